// caddy-kratos WebAuthn helpers: the global trigger functions Ory UIs call
// from onclickTrigger / onloadTrigger attributes of UI nodes.
;(function () {
  "use strict"
  if (typeof window === "undefined" || window.__oryWebAuthnInitialized) return
  window.__oryWebAuthnInitialized = true

  function b64urlToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/")
    while (s.length % 4) s += "="
    var bin = atob(s), out = new Uint8Array(bin.length)
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
    return out.buffer
  }
  function bufToB64url(buf) {
    var bytes = new Uint8Array(buf), bin = ""
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i])
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
  }
  window.__oryWebAuthnBufferDecode = b64urlToBuf
  window.__oryWebAuthnBufferEncode = bufToB64url

  function input(name) { return document.querySelector('input[name="' + name + '"]') }
  function options(raw) {
    var o = typeof raw === "string" ? JSON.parse(raw) : raw
    return o.publicKey ? o : { publicKey: o }
  }
  function submitWith(field, value, method) {
    var el = input(field)
    if (!el) return
    el.value = value
    var form = el.form || document.querySelector("form")
    if (!form) return
    var m = document.createElement("input")
    m.type = "hidden"; m.name = "method"; m.value = method
    form.appendChild(m)
    form.submit()
  }
  function prepareCreate(o) {
    o.publicKey.challenge = b64urlToBuf(o.publicKey.challenge)
    o.publicKey.user.id = b64urlToBuf(o.publicKey.user.id)
    ;(o.publicKey.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id) })
    return o
  }
  function prepareGet(o) {
    o.publicKey.challenge = b64urlToBuf(o.publicKey.challenge)
    ;(o.publicKey.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id) })
    return o
  }
  function attestation(c) {
    return JSON.stringify({
      id: c.id, rawId: bufToB64url(c.rawId), type: c.type,
      response: {
        attestationObject: bufToB64url(c.response.attestationObject),
        clientDataJSON: bufToB64url(c.response.clientDataJSON),
        transports: c.response.getTransports ? c.response.getTransports() : []
      }
    })
  }
  function assertion(c) {
    return JSON.stringify({
      id: c.id, rawId: bufToB64url(c.rawId), type: c.type,
      response: {
        authenticatorData: bufToB64url(c.response.authenticatorData),
        clientDataJSON: bufToB64url(c.response.clientDataJSON),
        signature: bufToB64url(c.response.signature),
        userHandle: c.response.userHandle ? bufToB64url(c.response.userHandle) : null
      }
    })
  }
  function fail(err) { console.error("webauthn:", err); alert(err && err.message ? err.message : err) }

  window.oryWebAuthnRegistration = function (opt) {
    navigator.credentials.create(prepareCreate(options(opt)))
      .then(function (c) { submitWith("webauthn_register", attestation(c), "webauthn") }, fail)
  }
  window.oryWebAuthnLogin = function (opt) {
    navigator.credentials.get(prepareGet(options(opt)))
      .then(function (c) { submitWith("webauthn_login", assertion(c), "webauthn") }, fail)
  }
  window.oryPasskeyRegistration = function () {
    var data = input("passkey_create_data")
    if (!data) return
    var o = prepareCreate(options(JSON.parse(data.value).credentialOptions || data.value))
    navigator.credentials.create(o)
      .then(function (c) { submitWith("passkey_register", attestation(c), "passkey") }, fail)
  }
  window.oryPasskeySettingsRegistration = function () {
    var data = input("passkey_create_data")
    if (!data) return
    var o = prepareCreate(options(JSON.parse(data.value).credentialOptions || data.value))
    navigator.credentials.create(o)
      .then(function (c) { submitWith("passkey_settings_register", attestation(c), "passkey") }, fail)
  }
  function passkeyChallenge() {
    var el = input("passkey_challenge")
    return el ? prepareGet(options(el.value)) : null
  }
  window.oryPasskeyLogin = function () {
    var o = passkeyChallenge()
    if (!o) return
    navigator.credentials.get(o)
      .then(function (c) { submitWith("passkey_login", assertion(c), "passkey") }, fail)
  }
  window.oryPasskeyLoginAutocompleteInit = function () {
    var o = passkeyChallenge()
    if (!o || !window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable) return
    PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
      if (!ok) return
      o.mediation = "conditional"
      navigator.credentials.get(o)
        .then(function (c) { submitWith("passkey_login", assertion(c), "passkey") }, function () {})
    })
  }
})()
