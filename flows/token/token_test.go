package token

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func FuzzSessionCookie(f *testing.F) {
	codec, err := NewCookieCodec([][]byte{[]byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		f.Fatal(err)
	}
	valid := codec.Seal("ory_st_abcdefghijklmnopqrstuvwxyz012345", time.Now().Add(time.Hour))
	f.Add(valid)
	f.Add("")
	f.Add("not-base64!!")
	f.Add(strings.Repeat("A", 600))
	f.Add(valid[:len(valid)-2] + "AA")
	f.Fuzz(func(t *testing.T, v string) {
		tok, err := codec.Open(v, time.Now())
		if err == nil && v != valid {
			// Only values we sealed may open: AES-GCM authenticates them.
			if tok != "ory_st_abcdefghijklmnopqrstuvwxyz012345" {
				t.Fatalf("forged cookie opened to %q", tok)
			}
		}
	})
}

func FuzzCSRFToken(f *testing.F) {
	raw := RandomBytes(32)
	f.Add(MaskCSRF(raw))
	f.Add("")
	f.Add("====")
	f.Add(strings.Repeat("A", 88))
	f.Fuzz(func(t *testing.T, s string) {
		b, err := UnmaskCSRF(s)
		if err == nil && len(b) != 32 {
			t.Fatalf("unmasked token of %d bytes", len(b))
		}
	})
}

func FuzzTokenShape(f *testing.F) {
	f.Add("ory_st_abcdefghijklmnopqrstuvwxyz012345")
	f.Add("")
	f.Add("ory_st_\x00")
	f.Fuzz(func(t *testing.T, s string) {
		if ValidShape(s) {
			if len(s) < 16 || len(s) > 128 || strings.ContainsAny(s, " \t\r\n\x00/%") {
				t.Fatalf("accepted malformed token %q", s)
			}
		}
	})
}

func TestCookieValueLikeNetHTTP(t *testing.T) {
	for _, line := range []string{
		"ory_kratos_session=abc",
		"a=1; ory_kratos_session=abc; b=2",
		"a=1;ory_kratos_session=\"abc\"",
		"ory_kratos_session=; ory_kratos_session=second",
		"ory_kratos_session=bad\\value; ory_kratos_session=good",
		"  ory_kratos_session = spaced ",
		"ory_kratos_session_x=no; x_ory_kratos_session=no",
		"",
		"ory_kratos_session",
		"ory_kratos_session=a=b",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Add("Cookie", line)
		r.Header.Add("Cookie", "ory_kratos_session=from-second-line")
		want, werr := r.Cookie("ory_kratos_session")
		got, ok := CookieValue(r.Header, "ory_kratos_session")
		if (werr == nil) != ok || (ok && got != want.Value) {
			t.Errorf("%q: cookieValue = %q, %v; net/http %v, %v", line, got, ok, want, werr)
		}
	}
}

func TestOpenHashMatchesOpen(t *testing.T) {
	old, _ := NewCookieCodec([][]byte{[]byte("old secret 0123456789")})
	rotated, _ := NewCookieCodec([][]byte{[]byte("new secret 0123456789"), []byte("old secret 0123456789")})
	now := time.Now()
	tok := NewSessionToken()
	for name, v := range map[string]string{"current": rotated.Seal(tok, now.Add(time.Hour)), "rotated": old.Seal(tok, now.Add(time.Hour))} {
		var h [32]byte
		exp, err := rotated.OpenHash(v, now, &h)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(h[:], Hash(tok)) || exp != now.Add(time.Hour).Unix() {
			t.Errorf("%s: hash or expiry differs", name)
		}
		if got, _ := rotated.Open(v, now); got != tok {
			t.Errorf("%s: open after openHash = %q", name, got)
		}
	}
	var h [32]byte
	if _, err := rotated.OpenHash(rotated.Seal(tok, now.Add(-time.Second)), now, &h); err == nil {
		t.Error("expired cookie opened")
	}
	if _, err := rotated.OpenHash(rotated.Seal("short", now.Add(time.Hour)), now, &h); err == nil {
		t.Error("token of a bad shape opened")
	}
	if _, err := rotated.OpenHash("garbage!", now, &h); err == nil {
		t.Error("garbage opened")
	}
}
