package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"syscall"
	"time"
)

// maxResponseBytes bounds every body read from a provider (discovery, keys,
// token, userinfo, user APIs): a misbehaving provider cannot make us buffer
// without end. go-oidc and oauth2 read some bodies with io.ReadAll, so the
// bound sits in the transport.
const maxResponseBytes = 1 << 20

var errBodyTooLarge = errors.New("response body exceeds 1 MiB")

// limitedClient returns a copy of c whose response bodies fail past
// maxResponseBytes.
func limitedClient(c *http.Client) *http.Client {
	cp := *c
	rt := cp.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if _, ok := rt.(limitTransport); !ok {
		cp.Transport = limitTransport{rt}
	}
	return &cp
}

type limitTransport struct{ next http.RoundTripper }

func (t limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxResponseBytes}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the limit from a longer one.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, errBodyTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// getJSON GETs url with an optional bearer token and returns the body of a
// 200 JSON answer. Network errors and 5xx wrap ErrUnavailable; other
// statuses wrap fail4xx.
func (b *base) getJSON(ctx context.Context, url, bearer string, fail4xx error) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := b.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %v", ErrUnavailable, url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %v", ErrUnavailable, url, err)
	}
	switch {
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("%w: GET %s: %s", ErrUnavailable, url, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: GET %s: %s: %s", fail4xx, url, resp.Status, clip(string(body), 200))
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil && mt == "application/jwt" {
		return nil, fmt.Errorf("%w: GET %s: signed (application/jwt) answers are not supported", fail4xx, url)
	}
	return body, nil
}

// guardedClient is the default client: a 10 s timeout, and a dialer that
// refuses this machine (loopback, unspecified) unless the provider itself
// is configured on loopback, and link-local addresses (cloud metadata)
// always. It is checked on the address actually dialled, so neither a
// redirect nor a DNS name pointing at 127.0.0.1 gets around it.
func guardedClient(allowLoopback bool) *http.Client {
	dialer := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip := net.ParseIP(host)
			switch {
			case ip == nil:
				return fmt.Errorf("oidc: dialing %q: not an IP address", address)
			case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
				return fmt.Errorf("oidc: dialing %s refused: link-local", address)
			case !allowLoopback && (ip.IsLoopback() || ip.IsUnspecified()):
				return fmt.Errorf("oidc: dialing %s refused: this machine", address)
			}
			return nil
		},
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = dialer.DialContext
	tr.Proxy = nil // the provider is dialled directly, where the guard sees it
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}
