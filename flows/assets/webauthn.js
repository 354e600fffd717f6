// caddy-kratos WebAuthn helpers: the global trigger functions Ory UIs call
// from onclickTrigger / onloadTrigger attributes of UI nodes.
//
// Where the options come from (all JSON, binary fields base64url):
//   oryWebAuthnRegistration        value of webauthn_register_trigger ({publicKey})
//   oryWebAuthnLogin               value of webauthn_login_trigger ({publicKey})
//   oryPasskeyRegistration         passkey_create_data ({credentialOptions, displayNameFieldName?})
//   oryPasskeySettingsRegistration passkey_create_data
//   oryPasskeyLogin(+Autocomplete) passkey_challenge ({publicKey})
// An options object (or its JSON) passed as the first argument wins (the
// deprecated onclick attributes pass it). The result is written, as JSON
// with base64url binary fields, into the hidden input of the method and the
// form is submitted with that method.
;(function () {
  "use strict"
  if (typeof window === "undefined" || window.__oryWebAuthnInitialized) return
  window.__oryWebAuthnInitialized = true

  function b64urlToBuf(s) {
    s = String(s).replace(/-/g, "+").replace(/_/g, "/")
    while (s.length % 4) s += "="
    var bin = atob(s), out = new Uint8Array(bin.length)
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
    return out.buffer
  }
  function bufToB64url(buf) {
    if (!buf) return undefined
    var bytes = new Uint8Array(buf), bin = ""
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i])
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
  }
  window.__oryWebAuthnBufferDecode = b64urlToBuf
  window.__oryWebAuthnBufferEncode = bufToB64url

  function field(name) { return document.querySelector('*[name="' + name + '"]') }
  function parse(raw) {
    if (raw === undefined || raw === null || raw === "") return null
    if (typeof raw === "string") return JSON.parse(raw)
    // Only an options object counts (UIs may pass an event).
    if (typeof raw === "object" && (raw.publicKey || raw.credentialOptions || raw.challenge)) return raw
    return null
  }
  // options normalises to {publicKey: …[, mediation]}.
  function options(raw) {
    var o = parse(raw)
    if (!o) return null
    return o.publicKey ? o : { publicKey: o }
  }
  function fromField(name) {
    var el = field(name)
    return el ? el.value : null
  }
  function supported() {
    if (window.PublicKeyCredential && navigator.credentials) return true
    alert("This browser does not support WebAuthn.")
    return false
  }
  function submitWith(name, value, method) {
    var el = field(name)
    if (!el) return
    el.value = value
    var form = el.form || (el.closest && el.closest("form")) || document.querySelector("form")
    if (!form) return
    var m = form.querySelector('input[type="hidden"][name="method"]')
    if (!m) {
      m = document.createElement("input")
      m.type = "hidden"
      m.name = "method"
      form.appendChild(m)
    }
    m.value = method
    form.submit()
  }
  function prepareCreate(o) {
    var pk = o.publicKey
    pk.challenge = b64urlToBuf(pk.challenge)
    pk.user.id = b64urlToBuf(pk.user.id)
    ;(pk.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id) })
    return o
  }
  function prepareGet(o) {
    var pk = o.publicKey
    pk.challenge = b64urlToBuf(pk.challenge)
    ;(pk.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id) })
    return o
  }
  function attestation(c) {
    return JSON.stringify({
      id: c.id, rawId: bufToB64url(c.rawId), type: c.type,
      authenticatorAttachment: c.authenticatorAttachment || undefined,
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
      authenticatorAttachment: c.authenticatorAttachment || undefined,
      response: {
        authenticatorData: bufToB64url(c.response.authenticatorData),
        clientDataJSON: bufToB64url(c.response.clientDataJSON),
        signature: bufToB64url(c.response.signature),
        userHandle: c.response.userHandle ? bufToB64url(c.response.userHandle) : undefined
      }
    })
  }
  function fail(err) {
    if (err && err.name === "AbortError") return
    console.error("webauthn:", err)
    alert(err && err.message ? err.message : String(err))
  }

  window.oryWebAuthnRegistration = function (opt) {
    if (!supported()) return
    var o = options(opt) || options(fromField("webauthn_register_trigger"))
    if (!o) return
    navigator.credentials.create(prepareCreate(o))
      .then(function (c) { submitWith("webauthn_register", attestation(c), "webauthn") }, fail)
  }
  window.oryWebAuthnLogin = function (opt) {
    if (!supported()) return
    var o = options(opt) || options(fromField("webauthn_login_trigger"))
    if (!o) return
    navigator.credentials.get(prepareGet(o))
      .then(function (c) { submitWith("webauthn_login", assertion(c), "webauthn") }, fail)
  }

  // passkeyCreate reads passkey_create_data (or opt) and fills in the
  // account name from the form field it names, when there is one.
  function passkeyCreate(opt) {
    var data = parse(opt) || parse(fromField("passkey_create_data"))
    if (!data) return null
    var o = options(data.credentialOptions || data)
    if (data.displayNameFieldName) {
      var nameEl = field(data.displayNameFieldName)
      if (nameEl && nameEl.value) {
        o.publicKey.user.name = nameEl.value
        o.publicKey.user.displayName = nameEl.value
      }
    }
    return prepareCreate(o)
  }
  window.oryPasskeyRegistration = function (opt) {
    if (!supported()) return
    var o = passkeyCreate(opt)
    if (!o) return
    navigator.credentials.create(o)
      .then(function (c) { submitWith("passkey_register", attestation(c), "passkey") }, fail)
  }
  window.oryPasskeySettingsRegistration = function (opt) {
    if (!supported()) return
    var o = passkeyCreate(opt)
    if (!o) return
    navigator.credentials.create(o)
      .then(function (c) { submitWith("passkey_settings_register", attestation(c), "passkey") }, fail)
  }

  function passkeyChallenge(opt) {
    var o = options(opt) || options(fromField("passkey_challenge"))
    return o ? prepareGet(o) : null
  }
  var conditional = null
  window.oryPasskeyLogin = function (opt) {
    if (!supported()) return
    var o = passkeyChallenge(opt)
    if (!o) return
    if (conditional) {
      // A pending autofill request would block the modal one.
      conditional.abort()
      conditional = null
    }
    delete o.mediation
    navigator.credentials.get(o)
      .then(function (c) { submitWith("passkey_login", assertion(c), "passkey") }, fail)
  }
  window.oryPasskeyLoginAutocompleteInit = function (opt) {
    if (!window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable) return
    PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
      if (!ok) return
      var o = passkeyChallenge(opt)
      if (!o) return
      o.mediation = "conditional"
      if (window.AbortController) {
        conditional = new AbortController()
        o.signal = conditional.signal
      }
      navigator.credentials.get(o)
        .then(function (c) { submitWith("passkey_login", assertion(c), "passkey") }, function () {})
    })
  }
})()
