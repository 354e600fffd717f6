package e2e

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
)

func TestToSession(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)

	t.Run("X-Session-Token", func(t *testing.T) {
		s, resp, err := in.api().FrontendAPI.ToSession(ctx).XSessionToken(u.Token).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if s.Id != u.SessionID || s.Identity == nil || s.Identity.Id != u.IdentityID {
			t.Errorf("session %s identity %+v, want %s / %s", s.Id, s.Identity, u.SessionID, u.IdentityID)
		}
		if h := resp.Header.Get("X-Kratos-Authenticated-Identity-Id"); h != u.IdentityID {
			t.Errorf("X-Kratos-Authenticated-Identity-Id = %q, want %q", h, u.IdentityID)
		}
		if got := resp.Header.Get("Cache-Control"); got != "private, no-cache, no-store, must-revalidate" {
			t.Errorf("Cache-Control = %q", got)
		}
		if tr, _ := s.Identity.Traits.(map[string]any); tr["email"] != u.Email {
			t.Errorf("traits = %v", s.Identity.Traits)
		}
	})

	t.Run("Authorization Bearer", func(t *testing.T) {
		r, body := do(t, plainHTTP(), "GET", in.apiBase+"/sessions/whoami", hdr{"Accept": "application/json", "Authorization": "Bearer " + u.Token}, nil)
		wantStatus(t, r, body, http.StatusOK)
		var s struct {
			ID       string `json:"id"`
			Identity map[string]json.RawMessage
		}
		if err := json.Unmarshal(body, &s); err != nil || s.ID != u.SessionID {
			t.Errorf("bearer whoami session = %q (%v), want %s", s.ID, err, u.SessionID)
		}
		if _, ok := s.Identity["credentials"]; ok {
			t.Error("whoami identity must not contain credentials")
		}
		if _, ok := s.Identity["metadata_admin"]; ok {
			t.Error("whoami identity must not contain metadata_admin")
		}
		if h := r.Header.Get("X-Kratos-Authenticated-Identity-Id"); h != u.IdentityID {
			t.Errorf("X-Kratos-Authenticated-Identity-Id = %q", h)
		}
	})

	t.Run("cookie", func(t *testing.T) {
		b := newBrowser(t, in)
		res := b.login(t, u.Email, u.Password)
		s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if s.Id != res.Session.Id || s.Identity.Id != u.IdentityID {
			t.Errorf("cookie whoami = session %s identity %s", s.Id, s.Identity.Id)
		}
		if h := resp.Header.Get("X-Kratos-Authenticated-Identity-Id"); h != u.IdentityID {
			t.Errorf("X-Kratos-Authenticated-Identity-Id = %q", h)
		}
		// The same cookie sent explicitly through the SDK's Cookie parameter.
		s2, resp, err := in.api().FrontendAPI.ToSession(ctx).Cookie(b.cookieHeader()).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if s2.Id != res.Session.Id {
			t.Errorf("explicit Cookie whoami = %s, want %s", s2.Id, res.Session.Id)
		}
	})

	t.Run("no or bad credentials", func(t *testing.T) {
		for name, h := range map[string]hdr{
			"none":           {"Accept": "application/json"},
			"garbage token":  {"Accept": "application/json", "X-Session-Token": "ory_st_" + randHex(16)},
			"garbage bearer": {"Accept": "application/json", "Authorization": "Bearer ory_st_" + randHex(16)},
			"garbage cookie": {"Accept": "application/json", "Cookie": "ory_kratos_session=" + randHex(40)},
		} {
			r, body := do(t, plainHTTP(), "GET", in.apiBase+"/sessions/whoami", h, nil)
			if r.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: status %d, want 401; body %s", name, r.StatusCode, clip(body))
				continue
			}
			decodeError(t, 401, body)
			wantErrorHeaders(t, r, "")
			if r.Header.Get("X-Kratos-Authenticated-Identity-Id") != "" {
				t.Errorf("%s: 401 carries X-Kratos-Authenticated-Identity-Id", name)
			}
		}
	})
}

func TestListMySessions(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in) // session A (current)
	_, sb := loginNative(t, in, u.Email, u.Password)
	_, sc := loginNative(t, in, u.Email, u.Password)
	other := registerNative(t, in) // must never show up

	list, resp, err := in.api().FrontendAPI.ListMySessions(ctx).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	var got []string
	for _, s := range list {
		got = append(got, s.Id)
		if s.Identity == nil || s.Identity.Id != u.IdentityID {
			t.Errorf("listed session %s belongs to %+v", s.Id, s.Identity)
		}
		if s.Active == nil || !*s.Active {
			t.Errorf("listed session %s not active", s.Id)
		}
	}
	sort.Strings(got)
	want := []string{sb.Id, sc.Id}
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("listed sessions = %v, want the two other sessions %v (current %s and %s's excluded)", got, want, u.SessionID, other.SessionID)
	}
	if h := resp.Header.Get("X-Total-Count"); h != "2" {
		t.Errorf("X-Total-Count = %q, want 2", h)
	}
	if h := resp.Header.Get("Link"); !strings.Contains(h, "/sessions?") || !strings.Contains(h, `rel="first"`) {
		t.Errorf("Link = %q, want a pagination header with rel=\"first\"", h)
	}

	list, resp, err = in.api().FrontendAPI.ListMySessions(ctx).XSessionToken(u.Token).PerPage(1).Page(0).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if len(list) != 1 {
		t.Errorf("per_page=1 returned %d sessions", len(list))
	}
	if h := resp.Header.Get("X-Total-Count"); h != "2" {
		t.Errorf("per_page=1 X-Total-Count = %q, want 2", h)
	}
	if h := resp.Header.Get("Link"); !strings.Contains(h, `rel="next"`) {
		t.Errorf("per_page=1 Link = %q, want rel=\"next\"", h)
	}

	_, resp, err = in.api().FrontendAPI.ListMySessions(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusUnauthorized)
	decodeError(t, 401, sdkErrBody(t, err))
}

func TestDisableMySession(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in) // A
	tokB, sb := loginNative(t, in, u.Email, u.Password)
	v := registerNative(t, in)

	resp, err := in.api().FrontendAPI.DisableMySession(ctx, sb.Id).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusNoContent)
	if _, code := whoamiToken(t, in, tokB); code != http.StatusUnauthorized {
		t.Errorf("revoked session B: whoami = %d, want 401", code)
	}
	if _, code := whoamiToken(t, in, u.Token); code != http.StatusOK {
		t.Errorf("current session A after revoking B: whoami = %d, want 200", code)
	}

	// The current session cannot be revoked this way.
	resp, err = in.api().FrontendAPI.DisableMySession(ctx, u.SessionID).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	if e := decodeError(t, 400, sdkErrBody(t, err)); !strings.Contains(e.Error.Message+e.Error.Reason, "cannot revoke current session") {
		t.Errorf("error = %+v, want message \"cannot revoke current session\"", e.Error)
	}
	if _, code := whoamiToken(t, in, u.Token); code != http.StatusOK {
		t.Errorf("current session after refused self-revoke: whoami = %d", code)
	}

	// Another identity's session: 204 and nothing happens.
	resp, err = in.api().FrontendAPI.DisableMySession(ctx, v.SessionID).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusNoContent)
	if _, code := whoamiToken(t, in, v.Token); code != http.StatusOK {
		t.Errorf("other identity's session was revoked by a stranger: whoami = %d", code)
	}

	// Malformed id.
	r, body := do(t, plainHTTP(), "DELETE", in.apiBase+"/sessions/not-a-uuid", hdr{"Accept": "application/json", "X-Session-Token": u.Token}, nil)
	wantStatus(t, r, body, http.StatusBadRequest)
	decodeError(t, 400, body)

	// Without a session.
	resp, err = in.api().FrontendAPI.DisableMySession(ctx, v.SessionID).Execute()
	wantSDKStatus(t, resp, err, http.StatusUnauthorized)
	decodeError(t, 401, sdkErrBody(t, err))
	if _, code := whoamiToken(t, in, v.Token); code != http.StatusOK {
		t.Errorf("unauthenticated DELETE revoked a session: whoami = %d", code)
	}
}

func TestDisableMyOtherSessions(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	var others []string
	for i := 0; i < 3; i++ {
		tok, _ := loginNative(t, in, u.Email, u.Password)
		others = append(others, tok)
	}
	v := registerNative(t, in)

	res, resp, err := in.api().FrontendAPI.DisableMyOtherSessions(ctx).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Count == nil || *res.Count != 3 {
		t.Errorf("count = %v, want 3", res.Count)
	}
	for i, tok := range others {
		if _, code := whoamiToken(t, in, tok); code != http.StatusUnauthorized {
			t.Errorf("other session %d still valid: %d", i, code)
		}
	}
	if _, code := whoamiToken(t, in, u.Token); code != http.StatusOK {
		t.Errorf("current session revoked by disableMyOtherSessions: %d", code)
	}
	if _, code := whoamiToken(t, in, v.Token); code != http.StatusOK {
		t.Errorf("another identity's session revoked: %d", code)
	}
	list, resp, err := in.api().FrontendAPI.ListMySessions(ctx).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if len(list) != 0 {
		t.Errorf("after revoking others the list has %d sessions", len(list))
	}

	res, resp, err = in.api().FrontendAPI.DisableMyOtherSessions(ctx).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Count == nil || *res.Count != 0 {
		t.Errorf("second call count = %v, want 0", res.Count)
	}

	_, resp, err = in.api().FrontendAPI.DisableMyOtherSessions(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusUnauthorized)
	decodeError(t, 401, sdkErrBody(t, err))
}
