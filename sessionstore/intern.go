package sessionstore

// Decoded sessions and identities live long in the caches, 100 000 of
// each by default, and the garbage collector visits every object they
// point to. The short values that nearly all of them share (aal1,
// password, active, email, …) are swapped for one shared copy after
// decoding, which removes a few heap objects per cached record.

// intern returns the shared copy of a well-known value, or s.
func intern(s string) string {
	switch s {
	case "aal1":
		return "aal1"
	case "aal2":
		return "aal2"
	case "password":
		return "password"
	case "totp":
		return "totp"
	case "lookup_secret":
		return "lookup_secret"
	case "webauthn":
		return "webauthn"
	case "passkey":
		return "passkey"
	case "code":
		return "code"
	case "active":
		return "active"
	case "inactive":
		return "inactive"
	case "default":
		return "default"
	case "email":
		return "email"
	case "sms":
		return "sms"
	case "pending":
		return "pending"
	case "sent":
		return "sent"
	case "completed":
		return "completed"
	}
	return s
}

func internSession(s *Session) {
	s.AAL = intern(s.AAL)
	for i := range s.AuthenticationMethods {
		m := &s.AuthenticationMethods[i]
		m.Method, m.AAL = intern(m.Method), intern(m.AAL)
	}
}

func internIdentity(id *Identity) {
	id.State, id.SchemaID = intern(id.State), intern(id.SchemaID)
	for i := range id.VerifiableAddresses {
		a := &id.VerifiableAddresses[i]
		a.Via, a.Status = intern(a.Via), intern(a.Status)
	}
	for i := range id.RecoveryAddresses {
		a := &id.RecoveryAddresses[i]
		a.Via = intern(a.Via)
	}
}

// internBytes returns the shared copy of a well-known value (the empty
// string included) without allocating, or false.
func internBytes(b []byte) (string, bool) {
	switch string(b) {
	case "":
		return "", true
	case "aal1":
		return "aal1", true
	case "aal2":
		return "aal2", true
	case "password":
		return "password", true
	case "totp":
		return "totp", true
	case "lookup_secret":
		return "lookup_secret", true
	case "webauthn":
		return "webauthn", true
	case "passkey":
		return "passkey", true
	case "code":
		return "code", true
	case "active":
		return "active", true
	case "inactive":
		return "inactive", true
	case "default":
		return "default", true
	case "email":
		return "email", true
	case "sms":
		return "sms", true
	case "pending":
		return "pending", true
	case "sent":
		return "sent", true
	case "completed":
		return "completed", true
	}
	return "", false
}
