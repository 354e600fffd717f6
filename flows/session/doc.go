// Package session owns sessions: issuing them (and upgrading them after a
// further factor), the session cookie, the one way from a request to its
// session (find: X-Session-Token, the cookie, Bearer), the one AAL rule
// (aal.go) with the second-factor methods reporting their active
// credentials through SecondFactor, whoami and its allocation-light
// encoder (byte for byte what encoding/json writes), the gate's
// allocation-free check, the /sessions endpoints, the session token
// exchange of native flows finished in a browser (exchange.go), and the
// gate's signed identity assertions with their JWKS.
//
// It imports flows/event (what it records), flows/wire, flows/token, the sessionstore interface and
// types, and never a flow or a method: they hand it what it needs (the
// Manager's Config, its SecondFactor list and its ExchangeConfig).
package session
