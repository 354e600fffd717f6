// caddy-kratos built-in pages: progressive enhancement only. Buttons with an
// onclickTrigger call window[trigger](value) (the functions of webauthn.js),
// inputs with an onloadTrigger run it once the page has loaded, and copy
// buttons appear for secrets and backup codes; the browser's time zone is
// remembered for the dates on the pages. Everything else works without
// JavaScript.
;(function () {
  "use strict"
  document.documentElement.classList.add("js")

  // The browser's time zone, so that the pages show dates in it
  // (kratos_tz, for the pages under this script's prefix only; the server
  // accepts only names of its time zone database).
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone
    var script = document.currentScript
    var path = script && script.src ? new URL(script.src).pathname.replace(/assets\/[^\/]*$/, "") : "/"
    if (tz && document.cookie.split("; ").indexOf("kratos_tz=" + encodeURIComponent(tz)) < 0) {
      document.cookie = "kratos_tz=" + encodeURIComponent(tz) + "; path=" + path + "; max-age=31536000; samesite=lax" +
        (location.protocol === "https:" ? "; secure" : "")
    }
  } catch (e) {
    // No Intl or cookies: dates stay in UTC.
  }

  function call(name, value) {
    var fn = window[name]
    if (typeof fn !== "function") {
      console.error("caddy-kratos: trigger " + name + " is not loaded")
      return
    }
    if (value === undefined || value === null || value === "") fn()
    else fn(value)
  }

  document.addEventListener("click", function (ev) {
    var el = ev.target
    if (!(el instanceof Element)) return
    var trigger = el.closest("[data-trigger]")
    if (trigger) {
      ev.preventDefault()
      call(trigger.getAttribute("data-trigger"), trigger.getAttribute("data-trigger-value"))
      return
    }
    var copy = el.closest("[data-copy]")
    if (copy) {
      ev.preventDefault()
      var target = document.getElementById(copy.getAttribute("data-copy"))
      if (!target || !navigator.clipboard) return
      var items = target.querySelectorAll("li")
      var text = items.length
        ? Array.prototype.map.call(items, function (li) { return li.textContent.trim() }).join("\n")
        : target.textContent.trim()
      navigator.clipboard.writeText(text).then(function () {
        var label = copy.textContent
        copy.textContent = copy.getAttribute("data-copied") || label
        setTimeout(function () { copy.textContent = label }, 1600)
      })
    }
  })

  function ready() {
    var copies = document.querySelectorAll("[data-copy]")
    for (var i = 0; i < copies.length; i++) if (navigator.clipboard) copies[i].hidden = false
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready)
  else ready()

  // Async scripts (webauthn.js) have run by the load event.
  window.addEventListener("load", function () {
    var els = document.querySelectorAll("[data-onload-trigger]")
    for (var i = 0; i < els.length; i++) call(els[i].getAttribute("data-onload-trigger"))
  })
})()
