package sessionstore

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func strPtr(s string) *string { return &s }

// recordSessions are sessions whose JSON exercises every field of the
// record: nil and empty slices, pointers, zones.
func recordSessions() []*Session {
	t0 := time.Date(2026, 11, 26, 10, 11, 12, 123456789, time.UTC)
	return []*Session{
		newSession("s1", "id-1", t0, time.Hour),
		{ID: "bare", IdentityID: "id-2", TokenHash: []byte{1}},
		{
			ID: "rich", IdentityID: "77777777-7777-4777-8777-000000000001", Active: true,
			ExpiresAt:       t0.Add(24 * time.Hour),
			AuthenticatedAt: t0.In(time.FixedZone("", 2*3600)),
			IssuedAt:        t0.In(time.FixedZone("", -(5*3600 + 30*60 + 15))), // seconds in the offset
			AAL:             "aal2",
			AuthenticationMethods: []AuthMethod{
				{Method: "password", AAL: "aal1", CompletedAt: t0},
				{Method: "totp", AAL: "aal2", CompletedAt: t0.Add(time.Second)},
				{Method: "some_new_method", AAL: "aal3"},
			},
			Devices: []Device{
				{ID: "d1", IPAddress: strPtr("192.0.2.1"), UserAgent: strPtr("Mozilla/5.0 ✓"), Location: ""},
				{ID: "d2", IPAddress: strPtr("")},
			},
			TokenHash:       bytes.Repeat([]byte{0xab}, 32),
			LogoutTokenHash: []byte{},
		},
		{ID: "empty-slices", IdentityID: "i", AuthenticationMethods: []AuthMethod{}, Devices: []Device{}, TokenHash: []byte("h")},
	}
}

func recordIdentities() []*Identity {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	verified := t0.Add(time.Minute)
	return []*Identity{
		{ID: "bare"},
		{
			ID: "77777777-7777-4777-8777-000000000001", SchemaID: "default", State: "active", StateChangedAt: t0,
			Traits: json.RawMessage(`{"email":"a@example.com","name":{"first":"Ä"}}`),
			VerifiableAddresses: []VerifiableAddress{
				{ID: "v1", Value: "a@example.com", Verified: true, Via: "email", Status: "completed", VerifiedAt: &verified, CreatedAt: t0, UpdatedAt: t0},
				{ID: "v2", Value: "+15550100", Via: "sms", Status: "pending"},
			},
			RecoveryAddresses: []RecoveryAddress{{ID: "r1", Value: "a@example.com", Via: "email", CreatedAt: t0, UpdatedAt: t0}},
			MetadataPublic:    json.RawMessage(`{"plan":"gold"}`),
			MetadataAdmin:     json.RawMessage(`{"secret":1}`),
			CreatedAt:         t0, UpdatedAt: t0.In(time.FixedZone("", 3600)),
			Credentials: map[string]Credential{
				"password": {Type: "password", Identifiers: []string{"a@example.com"}, Config: json.RawMessage(`{"hashed_password":"$2a$12$x"}`)},
				"totp":     {Type: "totp", Identifiers: []string{"77777777-7777-4777-8777-000000000001"}, Config: json.RawMessage(`{"totp_url":"otpauth://x"}`), Version: 1, CreatedAt: t0},
				"webauthn": {Type: "webauthn", Identifiers: []string{}, Config: json.RawMessage(`{"credentials":[]}`), Version: -1},
			},
			Version: 42,
		},
		{ID: "password-only", State: "inactive", Traits: json.RawMessage(`{}`), VerifiableAddresses: []VerifiableAddress{},
			Credentials: map[string]Credential{"password": {Type: "password"}}},
		{ID: "null-traits", Traits: json.RawMessage(`null`), Credentials: map[string]Credential{}},
	}
}

// viaJSON is what the engines decode from storage: the value as the
// cache would receive it.
func sessionViaJSON(t testing.TB, s *Session) *Session {
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeSession(data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func identityViaJSON(t testing.TB, id *Identity) *Identity {
	data, err := json.Marshal(id)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeIdentity(data)
	if err != nil {
		t.Fatal(err)
	}
	return ShareIdentity(out)
}

// TestSessionRecordRoundTrip: a session decoded from its record is the
// session decoded from its stored JSON, field for field (zones, nil and
// empty slices included) and byte for byte in JSON.
func TestSessionRecordRoundTrip(t *testing.T) {
	var w recordWriter
	for _, s := range recordSessions() {
		want := sessionViaJSON(t, s)
		for _, key := range [][]byte{nil, want.TokenHash} {
			rec, ok := appendSessionRecord(&w, []byte("prefix"), key, want)
			if !ok {
				t.Fatalf("%s: no record", s.ID)
			}
			got, err := decodeSessionRecord(rec[len("prefix"):], key)
			if err != nil {
				t.Fatalf("%s: %v", s.ID, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s:\n got %#v\nwant %#v", s.ID, got, want)
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			if !bytes.Equal(gj, wj) {
				t.Errorf("%s: JSON\n got %s\nwant %s", s.ID, gj, wj)
			}
			// Truncated or extended records are refused, never misread.
			for _, bad := range [][]byte{rec[len("prefix") : len(rec)-1], append(append([]byte{}, rec[len("prefix"):]...), 0)} {
				if _, err := decodeSessionRecord(bad, key); err == nil {
					t.Errorf("%s: a malformed record decoded", s.ID)
				}
			}
		}
	}
}

func TestIdentityRecordRoundTrip(t *testing.T) {
	var w recordWriter
	for _, id := range recordIdentities() {
		want := identityViaJSON(t, id)
		rec, ok := appendIdentityRecord(&w, nil, want)
		if !ok {
			t.Fatalf("%s: no record", id.ID)
		}
		got, err := decodeIdentityRecord(rec)
		if err != nil {
			t.Fatalf("%s: %v", id.ID, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", id.ID, got, want)
		}
		if !got.IsShared() {
			t.Errorf("%s: decoded copy is not marked shared", id.ID)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if !bytes.Equal(gj, wj) {
			t.Errorf("%s: JSON\n got %s\nwant %s", id.ID, gj, wj)
		}
		if _, err := decodeIdentityRecord(rec[:len(rec)-1]); err == nil {
			t.Errorf("%s: a truncated record decoded", id.ID)
		}
	}
}

// TestRecordFieldsDoNotAlias: byte fields of a decoded record share one
// allocation but not capacity: appending to one never changes another.
func TestRecordFieldsDoNotAlias(t *testing.T) {
	var w recordWriter
	s := sessionViaJSON(t, recordSessions()[0])
	rec, _ := appendSessionRecord(&w, nil, nil, s)
	got, err := decodeSessionRecord(rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got.TokenHash, 0xff)
	if !bytes.Equal(got.LogoutTokenHash, s.LogoutTokenHash) {
		t.Fatal("appending to TokenHash changed LogoutTokenHash")
	}
}

// FuzzSessionRecord: any session JSON the engines could decode round-trips
// through its record; any bytes given to the record decoder give an error
// or a session, never a panic.
func FuzzSessionRecord(f *testing.F) {
	var w recordWriter
	for _, s := range recordSessions() {
		data, _ := json.Marshal(s)
		f.Add(data)
		rec, _ := appendSessionRecord(&w, nil, nil, sessionViaJSON(f, s))
		f.Add(rec)
	}
	for _, id := range recordIdentities() {
		data, _ := json.Marshal(id)
		f.Add(data)
		rec, _ := appendIdentityRecord(&w, nil, identityViaJSON(f, id))
		f.Add(rec)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeSessionRecord(data, nil)
		_, _ = decodeSessionRecord(data, []byte("key"))
		_, _ = decodeIdentityRecord(data)
		var w recordWriter
		if s, err := DecodeSession(data); err == nil {
			rec, ok := appendSessionRecord(&w, nil, s.TokenHash, s)
			if ok {
				got, err := decodeSessionRecord(rec, s.TokenHash)
				if err != nil {
					t.Fatalf("session record: %v", err)
				}
				if !reflect.DeepEqual(got, s) {
					t.Fatalf("session:\n got %#v\nwant %#v", got, s)
				}
			}
		}
		if id, err := DecodeIdentity(data); err == nil {
			id = ShareIdentity(id)
			rec, ok := appendIdentityRecord(&w, nil, id)
			if ok {
				got, err := decodeIdentityRecord(rec)
				if err != nil {
					t.Fatalf("identity record: %v", err)
				}
				if !reflect.DeepEqual(got, id) {
					t.Fatalf("identity:\n got %#v\nwant %#v", got, id)
				}
			}
		}
	})
}

// BenchmarkSessionDecode: what a hit in the compact tier costs against
// what a miss costs after its read (the stored JSON decoded).
func BenchmarkSessionDecode(b *testing.B) {
	s := sessionViaJSON(b, newSession("77777777-7777-4777-8777-000000000001", "77777777-7777-4777-8777-000000000002", time.Now().UTC(), time.Hour))
	data, _ := json.Marshal(s)
	var w recordWriter
	rec, _ := appendSessionRecord(&w, nil, s.TokenHash, s)
	benchDecode(b, data, rec, func() error { return second(DecodeSession(data)) },
		func() error { return second(decodeSessionRecord(rec, s.TokenHash)) })
}

func BenchmarkIdentityDecode(b *testing.B) {
	id := identityViaJSON(b, &Identity{
		ID: "77777777-7777-4777-8777-000000000001", SchemaID: "default", State: "active",
		Traits:              json.RawMessage(`{"email":"user1@example.com"}`),
		VerifiableAddresses: []VerifiableAddress{{ID: "77777777-7777-4777-8777-000000000003", Value: "user1@example.com", Via: "email", Status: "pending"}},
		RecoveryAddresses:   []RecoveryAddress{{ID: "77777777-7777-4777-8777-000000000004", Value: "user1@example.com", Via: "email"}},
		MetadataPublic:      json.RawMessage(`null`),
		Credentials:         map[string]Credential{"password": {Type: "password", Identifiers: []string{"user1@example.com"}, Config: json.RawMessage(`{"hashed_password":"$2a$12$abcdefghijklmnopqrstuv"}`)}},
	})
	data, _ := json.Marshal(id)
	var w recordWriter
	rec, _ := appendIdentityRecord(&w, nil, id)
	benchDecode(b, data, rec, func() error { return second(DecodeIdentity(data)) },
		func() error { return second(decodeIdentityRecord(rec)) })
}

// benchDecode times decoding the stored JSON data (fromJSON) against
// decoding the compact record rec (fromRecord).
func benchDecode(b *testing.B, data, rec []byte, fromJSON, fromRecord func() error) {
	for _, bc := range []struct {
		name   string
		bytes  []byte
		decode func() error
	}{{"json", data, fromJSON}, {"record", rec, fromRecord}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.bytes)))
			for b.Loop() {
				if err := bc.decode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// second is the error of a call's two results.
func second[T any](_ T, err error) error { return err }
