package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestAdminAPIModule(t *testing.T) {
	mi, err := caddy.GetModule("admin.api.kratos")
	if err != nil {
		t.Fatalf("admin.api.kratos is not registered: %v", err)
	}
	router, ok := mi.New().(caddy.AdminRouter)
	if !ok {
		t.Fatal("admin.api.kratos is not an AdminRouter")
	}
	routes := router.Routes()
	if len(routes) != 1 || routes[0].Pattern != "/kratos/admin/" {
		t.Fatalf("routes = %+v", routes)
	}
	// No config is running in this test binary: 503 in Kratos's shape.
	rec := httptest.NewRecorder()
	if err := routes[0].Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/kratos/admin/identities", nil)); err != nil {
		t.Fatalf("handler error: %v", err)
	}
	var body struct {
		Error struct {
			Code   int    `json:"code"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if rec.Code != http.StatusServiceUnavailable || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != 503 || body.Error.Reason == "" {
		t.Fatalf("without a kratos app: %d %s", rec.Code, rec.Body)
	}
}
