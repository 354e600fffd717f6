package flows

import (
	"sync"
	"testing"
)

func registerNative(t *testing.T, url, email string) string {
	t.Helper()
	f := do(t, nil, "GET", url+"/self-service/registration/api", nil, nil)
	reg := do(t, nil, "POST", actionOf(t, f), map[string]any{"method": "password", "password": "Gx7!qVt2#pLr9$wZk4", "traits": map[string]any{"email": email}}, nil)
	if reg.status != 200 {
		t.Fatalf("register: %d %s", reg.status, reg.raw)
	}
	return reg.body["session_token"].(string)
}

func TestRecoveryCodeOnceUnderConcurrency(t *testing.T) {
	mailer := &memMailer{}
	_, srv := testEngine(t, func(c *Config) {
		c.RecoveryEnabled, c.Mailer, c.RegistrationStyle = true, mailer, "unified"
	})
	registerNative(t, srv.URL, "r@example.com")
	f := do(t, nil, "GET", srv.URL+"/self-service/recovery/api", nil, nil)
	a := actionOf(t, f)
	// Unknown and known addresses get the same answer; only the known one
	// gets a mail.
	before := len(mailer.sent)
	u := do(t, nil, "POST", a, map[string]any{"method": "code", "email": "nobody@example.com"}, nil)
	if u.status != 200 || u.body["state"] != "sent_email" || !contains(messageIDs(u.body), 1060003) || len(mailer.sent) != before {
		t.Fatalf("unknown address: %d %s (mails %d)", u.status, u.raw, len(mailer.sent)-before)
	}
	k := do(t, nil, "POST", a, map[string]any{"method": "code", "email": "r@example.com"}, nil)
	if k.status != 200 || k.body["state"] != "sent_email" {
		t.Fatalf("known address: %d %s", k.status, k.raw)
	}
	code := mailer.last(t).RecoveryCode
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := do(t, nil, "POST", a, map[string]any{"method": "code", "code": code}, nil)
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[422] != 1 {
		t.Fatalf("one code, %d successes (statuses %v)", statuses[422], statuses)
	}
}

func TestRecoveryAttemptsLimit(t *testing.T) {
	mailer := &memMailer{}
	_, srv := testEngine(t, func(c *Config) {
		c.RecoveryEnabled, c.Mailer, c.RegistrationStyle = true, mailer, "unified"
	})
	registerNative(t, srv.URL, "l@example.com")
	f := do(t, nil, "GET", srv.URL+"/self-service/recovery/api", nil, nil)
	a := actionOf(t, f)
	do(t, nil, "POST", a, map[string]any{"method": "code", "email": "l@example.com"}, nil)
	code := mailer.last(t).RecoveryCode
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i := 0; i < 5; i++ {
		r := do(t, nil, "POST", a, map[string]any{"method": "code", "code": wrong}, nil)
		if r.status != 200 || !contains(messageIDs(r.body), 4060006) {
			t.Fatalf("wrong code %d: %d %s", i, r.status, r.raw)
		}
	}
	r := do(t, nil, "POST", a, map[string]any{"method": "code", "code": code}, nil)
	if r.status == 422 {
		t.Fatal("right code accepted after 5 wrong ones")
	}
}

func TestVerificationByCode(t *testing.T) {
	mailer := &memMailer{}
	_, srv := testEngine(t, func(c *Config) {
		c.VerificationEnabled, c.Mailer, c.RegistrationStyle = true, mailer, "unified"
	})
	tok := registerNative(t, srv.URL, "v@example.com")
	m := mailer.last(t)
	if m.Template != "verification_code_valid" || len(m.VerificationCode) != 6 {
		t.Fatalf("mail after registration: %+v", m)
	}
	f := do(t, nil, "GET", srv.URL+"/self-service/verification/api", nil, nil)
	a := actionOf(t, f)
	if r := do(t, nil, "POST", a, map[string]any{"method": "code", "email": "v@example.com"}, nil); r.status != 200 || !contains(messageIDs(r.body), 1080003) {
		t.Fatalf("send: %d %s", r.status, r.raw)
	}
	code := mailer.last(t).VerificationCode
	ok := do(t, nil, "POST", a, map[string]any{"method": "code", "code": code}, nil)
	if ok.status != 200 || ok.body["state"] != "passed_challenge" || !contains(messageIDs(ok.body), 1080002) {
		t.Fatalf("verify: %d %s", ok.status, ok.raw)
	}
	who := do(t, nil, "GET", srv.URL+"/sessions/whoami", nil, map[string]string{"X-Session-Token": tok})
	addr := who.body["identity"].(map[string]any)["verifiable_addresses"].([]any)[0].(map[string]any)
	if addr["verified"] != true || addr["status"] != "completed" || addr["verified_at"] == nil {
		t.Fatalf("address: %v", addr)
	}
}
