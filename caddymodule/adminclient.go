package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// adminClient talks to Caddy's admin endpoint like Caddy's own commands
// (caddycmd.AdminAPIRequest): any network Caddy can listen on, and the
// Origin header the endpoint's host and origin checks expect.
type adminClient struct {
	addr      string
	origin    string
	setOrigin bool // not for unix sockets and fds, as caddycmd does
	hc        *http.Client
}

func newAdminClient(addr string) (*adminClient, error) {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil || na.PortRangeSize() > 1 {
		return nil, fmt.Errorf("invalid admin address %s: %v", addr, err)
	}
	cl := &adminClient{addr: addr, origin: "http://" + na.JoinHostPort(0), setOrigin: true}
	dialAddr := na.JoinHostPort(0)
	if na.IsUnixNetwork() || na.IsFdNetwork() {
		cl.origin, cl.setOrigin = "http://127.0.0.1", false
		dialAddr, _, _ = strings.Cut(dialAddr, "|") // socket permission bits
	}
	cl.hc = &http.Client{
		Timeout: 5 * time.Minute, // imports hash plaintext passwords
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, na.Network, dialAddr)
			},
		},
	}
	return cl, nil
}

// adminAPIError is an error answer of the admin API.
type adminAPIError struct {
	status  int
	message string
	details struct {
		Identities []struct {
			Action   string          `json:"action"`
			Identity string          `json:"identity"`
			Error    json.RawMessage `json:"error"`
		} `json:"identities"`
	}
}

func (e *adminAPIError) Error() string { return e.message }

// call sends a JSON request and decodes a 2xx JSON answer into out.
func (cl *adminClient) call(method, path string, body, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, cl.origin+path, rd)
	if err != nil {
		return nil, err
	}
	if cl.setOrigin {
		req.Header.Set("Origin", cl.origin)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := cl.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("is the server running? (could not reach the admin API at %s: %v)", cl.addr, unwrapNetError(err))
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the admin API's answer: %v", err)
	}
	if res.StatusCode >= 300 {
		return res, decodeAPIError(res.StatusCode, raw)
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return res, fmt.Errorf("unexpected answer from the admin API (HTTP %d): %v", res.StatusCode, err)
		}
	}
	return res, nil
}

func unwrapNetError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeAPIError turns an error answer into a readable message: Kratos's
// error shape, Caddy's admin error shape, or the raw body.
func decodeAPIError(status int, raw []byte) error {
	e := &adminAPIError{status: status}
	var k struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &k) == nil && len(k.Error) > 0 {
		var s string
		if json.Unmarshal(k.Error, &s) == nil { // Caddy's admin errors
			e.message = fmt.Sprintf("the admin endpoint refused the request (HTTP %d): %s", status, s)
			return e
		}
		var ke struct {
			Details struct {
				Identities json.RawMessage `json:"identities"`
			} `json:"details"`
		}
		_ = json.Unmarshal(k.Error, &ke)
		if len(ke.Details.Identities) > 0 {
			_ = json.Unmarshal(ke.Details.Identities, &e.details.Identities)
		}
		e.message = describeError(k.Error)
		if status == http.StatusNotFound && strings.Contains(e.message, "Unable to locate the resource") {
			e.message = "not found (HTTP 404)"
		}
		return e
	}
	body := strings.TrimSpace(string(raw))
	if len(body) > 300 {
		body = body[:300] + "…"
	}
	if status == http.StatusNotFound {
		e.message = "the admin endpoint has no Kratos admin API (HTTP 404): is this caddy-kratos?"
		return e
	}
	e.message = fmt.Sprintf("HTTP %d: %s", status, body)
	return e
}

// describeError renders a Kratos error object as "<code> <message>: <reason>".
func describeError(raw json.RawMessage) string {
	var ke struct {
		Code    int    `json:"code"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
	}
	if json.Unmarshal(raw, &ke) != nil || ke.Code == 0 {
		return strings.TrimSpace(string(raw))
	}
	s := fmt.Sprintf("%s (HTTP %d)", ke.Message, ke.Code)
	if ke.Reason != "" {
		s += ": " + ke.Reason
	}
	return s
}

// list reads a paginated list from path, following the Link header's
// next page, until it ends or holds limit items (0: no limit).
func (cl *adminClient) list(path string, limit int) ([]json.RawMessage, error) {
	var all []json.RawMessage
	for path != "" && (limit <= 0 || len(all) < limit) {
		var page []json.RawMessage
		res, err := cl.call(http.MethodGet, path, nil, &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		path = nextLink(res.Header.Get("Link"))
	}
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}

// nextLink returns the path and query of the rel="next" link, or "".
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(part, ";")
		if !ok || !strings.Contains(params, `rel="next"`) {
			continue
		}
		u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
		if err != nil {
			return ""
		}
		return u.RequestURI()
	}
	return ""
}

// --- output ---
