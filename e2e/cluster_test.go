package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

// Several gateways on one PostgreSQL database (issue 14): three
// caddy-kratos processes with the same Caddyfile but for their ports,
// one schema, one SMTP server.
//
// public_url: every node has the same one, the address of a small
// round-robin reverse proxy in the test, as a load balancer in front of a
// real cluster would be. Giving each node its own public_url would be a
// different deployment (three sites sharing a database), with its own
// CSRF cookie name and link host per node; the same public_url is what
// makes a cookie or a mailed code from one node good on the next. The
// tests address the nodes' own ports directly to choose which node
// serves which step; the proxy carries one browser whose every request
// lands on the next node, and the links in the mails.
//
// Between the nodes and PostgreSQL sits a TCP proxy of the test's, so
// the database can be cut and restored under load.

// cluster is N gateway nodes on one schema behind one public URL.
type cluster struct {
	nodes []*instance
	dsn   string // the nodes' DSN (through the proxy)
	db    *tcpProxy
	mail  *mailServer
	lbURL string // the public URL: the round-robin proxy
	lb    *instance
}

// clusterLimits: the per-identifier limit as by default (10), the per-IP
// ones out of the way (every request comes from 127.0.0.1).
var clusterLimits = "rate_limits {\n\t\t\tlogin_failures_per_identifier 10\n\t\t\tlogin_failures_per_ip 1000000\n\t\t\tcode_failures_per_ip 1000000\n\t\t\tsends_per_ip 1000000\n\t\t\tregistrations_per_ip 1000000\n\t\t\tflows_per_ip 1000000\n\t\t}"

// startCluster starts n nodes together (they migrate the empty schema
// together: once, under the advisory lock) and stops them when t ends.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	direct := pgSchemaDSN(t)
	u := mustURL(direct)
	c := &cluster{db: startTCPProxy(t, u.Host), mail: startMailServer(t)}
	u.Host = c.db.addr
	c.dsn = u.String()

	// The public URL: a round-robin proxy over the running nodes.
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0]))
	if err != nil {
		t.Fatal(err)
	}
	c.lbURL = fmt.Sprintf("http://127.0.0.1:%d/", ports[0])
	var rr atomic.Uint64
	lb := &http.Server{Handler: &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		for range c.nodes {
			in := c.nodes[int(rr.Add(1))%len(c.nodes)]
			if in.running() {
				r.SetURL(mustURL(in.apiBase))
				break
			}
		}
		r.Out.Host = r.In.Host
	}}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = lb.Serve(ln) }()
	t.Cleanup(func() { _ = lb.Close() })
	c.lb = &instance{publicURL: c.lbURL, apiBase: strings.TrimSuffix(c.lbURL, "/")}

	lines := append(mailLines(c.mail), "recovery", clusterLimits)
	for i := 0; i < n; i++ {
		in, err := newInstance(t.TempDir(), instanceOptions{Storage: c.dsn, PublicURL: c.lbURL, GlobalKratos: lines})
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, in)
		t.Cleanup(func() {
			in.stop()
			if t.Failed() {
				t.Logf("--- node %d output (tail) ---\n%s", i+1, in.logs.tail(16<<10))
			}
		})
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, in := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = in.start() }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d did not start: %v\n%s", i+1, err, c.nodes[i].logs.tail(16<<10))
		}
	}
	return c
}

// TestCluster: three gateways on one database. The subtests run in
// order on one cluster; the last one kills a node.
func TestCluster(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]

	t.Run("a session made on one node is good on every node", func(t *testing.T) {
		u := registerNative(t, n1)
		tok, s := loginNative(t, n2, u.Email, u.Password)
		got, status := whoamiToken(t, n3, tok)
		if status != http.StatusOK || got.Id != s.Id || got.Identity.Id != u.IdentityID {
			t.Fatalf("whoami on node 3 of the session made on node 2: %d %+v", status, got)
		}
		r, body, echo := gateGet(t, n3, plainHTTP(), "/private/cluster", hdr{"Accept": "application/json", "X-Session-Token": tok})
		if echo == nil {
			t.Fatalf("the gate on node 3 refused the session made on node 2: %d %s", r.StatusCode, clip(body))
		}
		if ids := seenIdentity(echo); len(ids) != 1 || ids[0] != u.IdentityID {
			t.Fatalf("the gate on node 3 passed identity %v, want %s", ids, u.IdentityID)
		}
		// A browser logged in on node 2: its cookie on node 3.
		b := newBrowser(t, n2)
		b.login(t, u.Email, u.Password)
		s3, resp, err := n3.newSDK(b.hc).FrontendAPI.ToSession(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if s3.Identity.Id != u.IdentityID {
			t.Fatalf("cookie on node 3: identity %s, want %s", s3.Identity.Id, u.IdentityID)
		}
		// A browser through the public URL: flow, submit and whoami each
		// on the next node.
		lb := newBrowser(t, c.lb)
		lb.login(t, u.Email, u.Password)
		for i := 0; i < 3; i++ {
			s, resp, err := lb.sdk.FrontendAPI.ToSession(ctx).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
			if s.Identity.Id != u.IdentityID {
				t.Fatalf("whoami %d through the public URL: identity %s", i, s.Identity.Id)
			}
		}
	})

	t.Run("a revoke on one node is refused by every node within 1s", func(t *testing.T) {
		c.revocationDelays(t)
	})

	t.Run("three couriers deliver each mail once", func(t *testing.T) {
		c.couriers(t)
	})

	t.Run("login limits count across nodes", func(t *testing.T) {
		u := registerNative(t, n1)
		l := &clusterLoad{c: c, hcs: []*http.Client{hbClient(), hbClient(), hbClient()}}
		login := func(node int, password string) clusterOp {
			op, _ := l.flow(node, "login", map[string]any{"method": "password", "identifier": u.Email, "password": password})
			if op.err != nil || op.kind != "login" {
				t.Fatalf("login on node %d: %s %d %v %s", node+1, op.kind, op.status, op.err, clip(op.body))
			}
			return op
		}
		for i := 0; i < 10; i++ {
			op := login(i%3, "wrong-"+randHex(4))
			wantWrongPassword(t, fmt.Sprintf("wrong password %d, on node %d", i+1, i%3+1), op.status, op.body)
		}
		for i := range c.nodes {
			op := login(i, "wrong-"+randHex(4))
			want429(t, fmt.Sprintf("a wrong password after 10, on node %d", i+1), op.status, op.header, op.body)
			op = login(i, u.Password)
			want429(t, fmt.Sprintf("the right password during the block, on node %d", i+1), op.status, op.header, op.body)
		}
	})

	t.Run("a node reloaded under load fails no request", func(t *testing.T) {
		c.reloadUnderLoad(t, 1)
	})

	t.Run("the database cut under load: 503s, then recovery without a restart", func(t *testing.T) {
		c.databaseCut(t)
	})

	t.Run("kill -9 of a node under load loses nothing acknowledged", func(t *testing.T) {
		c.killUnderLoad(t, 2)
	})
}

// ---------------------------------------------------------------------------
// Revocation

// revocationDelays revokes 20 sessions on node 2 (native logout and
// DELETE /sessions/{id}, alternately), each first warmed into the caches
// of nodes 1 and 3 (whoami and the gate), and measures when nodes 1 and
// 3 refuse it: polled every 2 ms from the moment the revoke returned.
func (c *cluster) revocationDelays(t *testing.T) {
	const rounds = 20
	const bound = time.Second
	n2 := c.nodes[1]
	others := []int{0, 2}
	u := registerNative(t, c.nodes[0])
	// delays[node][endpoint]
	type key struct {
		node     int
		endpoint string
	}
	delays := map[key][]time.Duration{}
	hcs := []*http.Client{hbClient(), hbClient(), hbClient()}
	refused := func(node int, endpoint, tok string) (bool, int) {
		in := c.nodes[node]
		u := in.apiBase + "/sessions/whoami"
		if endpoint == "gate" {
			u = in.appBase + "/private/revoked"
		}
		r, _, err := hbSend(hcs[node], "GET", u, hdr{"Accept": "application/json", "X-Session-Token": tok}, nil)
		if err != nil {
			return false, 0
		}
		return r.StatusCode == http.StatusUnauthorized, r.StatusCode
	}
	for i := 0; i < rounds; i++ {
		tok, s := loginNative(t, n2, u.Email, u.Password)
		for _, node := range others {
			for _, ep := range []string{"whoami", "gate"} {
				for range 2 {
					if no, st := refused(node, ep, tok); no || st != http.StatusOK {
						t.Fatalf("round %d: %s on node %d before the revoke: %d", i, ep, node+1, st)
					}
				}
			}
		}
		var resp *http.Response
		var err error
		how := "native logout"
		if i%2 == 0 {
			resp, err = n2.api().FrontendAPI.PerformNativeLogout(ctx).PerformNativeLogoutBody(*ory.NewPerformNativeLogoutBody(tok)).Execute()
		} else {
			how = "DELETE /sessions/{id}"
			resp, err = n2.api().FrontendAPI.DisableMySession(ctx, s.Id).XSessionToken(u.Token).Execute()
		}
		wantSDKStatus(t, resp, err, http.StatusNoContent)
		t0 := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, node := range others {
			for _, ep := range []string{"whoami", "gate"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						no, _ := refused(node, ep, tok)
						d := time.Since(t0)
						if no || d > 5*time.Second {
							mu.Lock()
							delays[key{node, ep}] = append(delays[key{node, ep}], d)
							mu.Unlock()
							if !no {
								t.Errorf("round %d (%s): node %d still accepts the session on %s after %v", i, how, node+1, ep, d)
							}
							return
						}
						time.Sleep(2 * time.Millisecond)
					}
				}()
			}
		}
		wg.Wait()
	}
	var all []time.Duration
	for _, node := range others {
		for _, ep := range []string{"whoami", "gate"} {
			ds := delays[key{node, ep}]
			all = append(all, ds...)
			p50, max := percentile(ds, 50), percentile(ds, 100)
			t.Logf("revocation on node 2 → refused by node %d %-6s after p50 %v, max %v (%d revokes)", node+1, ep, p50, max, len(ds))
		}
	}
	p50, p99, max := percentile(all, 50), percentile(all, 99), percentile(all, 100)
	t.Logf("revocation delay, nodes 1 and 3, whoami and gate: p50 %v, p99 %v, max %v over %d measurements (bound %v)", p50, p99, max, len(all), bound)
	if max > bound {
		t.Errorf("a revoked session was accepted %v after the revoke returned; the bound is %v", max, bound)
	}
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))].Round(100 * time.Microsecond)
}

// ---------------------------------------------------------------------------
// Couriers

// couriers: 30 recovery mails, asked for on the three nodes in turn;
// half of them while the SMTP server is down, so that when it is back
// the three couriers find the same queued messages at once. Each address
// gets exactly one mail, and its code works on another node.
func (c *cluster) couriers(t *testing.T) {
	const n = 30
	users := make([]user, n)
	for i := range users {
		users[i] = registerNative(t, c.nodes[i%3])
	}
	flows := make([]string, n)
	send := func(from, to int) {
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for i := from; i < to; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := c.nodes[i%3].api()
				f, resp, err := c.FrontendAPI.CreateNativeRecoveryFlow(ctx).Execute()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs <- fmt.Sprintf("recovery flow %d: %v", i, err)
					return
				}
				got, resp, err := c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(f.Id).UpdateRecoveryFlowBody(recoveryEmailBody(users[i].Email, "")).Execute()
				if err != nil || resp.StatusCode != http.StatusOK || got.State != "sent_email" {
					errs <- fmt.Sprintf("recovery %d: %v", i, err)
					return
				}
				flows[i] = f.Id
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Fatal(e)
		}
	}
	c.mail.stop()
	send(0, n/2)
	time.Sleep(300 * time.Millisecond)
	c.mail.start(t)
	send(n/2, n)
	for i := range users {
		c.mail.wait(t, users[i].Email, "", 1)
	}
	// Stragglers: a second delivery would come within the retry delays.
	time.Sleep(2 * time.Second)
	for i, u := range users {
		msgs := c.mail.to(u.Email, "")
		if len(msgs) != 1 {
			t.Errorf("%s (recovery asked on node %d): %d mails, want exactly 1", u.Email, i%3+1, len(msgs))
			continue
		}
		if i%5 == 0 {
			wantRecovered(t, c.nodes[(i+1)%3], flows[i], msgs[0].code(t))
		}
	}
}

// ---------------------------------------------------------------------------
// Load

// clusterOp is one request made under load.
type clusterOp struct {
	node       int
	kind       string
	start, end time.Time
	status     int
	body       []byte
	err        error
	header     http.Header
	reused     bool
	email      string // a registration's address
}

// ackedUser is an identity whose registration answered 200.
type ackedUser struct {
	node                int
	email, password, id string
	token               string
	ackAt               time.Time
}

// clusterLoad runs workers against some nodes until stopped.
type clusterLoad struct {
	c    *cluster
	hcs  []*http.Client
	mu   sync.Mutex
	ops  []clusterOp
	regs []*ackedUser
	stop chan struct{}
	wg   sync.WaitGroup
}

// startLoad runs perNode workers on each of nodes: registrations,
// logins (of the given users and of the load's own registrations),
// whoami and the gate, in turn.
func (c *cluster) startLoad(nodes []int, perNode int, users []user) *clusterLoad {
	l := &clusterLoad{c: c, stop: make(chan struct{})}
	for range c.nodes {
		l.hcs = append(l.hcs, hbClient())
	}
	for _, node := range nodes {
		for w := 0; w < perNode; w++ {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				for i := w; ; i++ {
					select {
					case <-l.stop:
						return
					default:
					}
					u := users[i%len(users)]
					switch i % 4 {
					case 0:
						l.register(node)
					case 1:
						l.login(node, u.Email, u.Password)
					case 2:
						l.get(node, "whoami", c.nodes[node].apiBase+"/sessions/whoami", u.Token)
					case 3:
						l.get(node, "gate", c.nodes[node].appBase+"/private/load", u.Token)
					}
				}
			}()
		}
	}
	return l
}

// finish stops the workers and returns what they did.
func (l *clusterLoad) finish() []clusterOp {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ops)
}

func (l *clusterLoad) acked() []*ackedUser {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.regs)
}

func (l *clusterLoad) send(node int, kind, method, u, token string, body []byte) clusterOp {
	var email string
	if kind == "registration" {
		var v struct {
			Traits struct {
				Email string `json:"email"`
			} `json:"traits"`
		}
		_ = json.Unmarshal(body, &v)
		email = v.Traits.Email
	}
	op := clusterOp{node: node, kind: kind, start: time.Now(), email: email}
	h := hdr{"Accept": "application/json"}
	if body != nil {
		h["Content-Type"] = "application/json"
	}
	if token != "" {
		h["X-Session-Token"] = token
	}
	r, b, reused, err := hrSend(l.hcs[node], method, u, h, body)
	op.end, op.reused, op.err, op.body = time.Now(), reused, err, b
	if r != nil {
		op.status, op.header = r.StatusCode, r.Header
		if kind == "gate" && r.StatusCode == http.StatusOK && r.Header.Get("X-Echo-Upstream") == "" {
			op.status = -1 // a 200 that did not come from the app
		}
	}
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
	if err != nil {
		time.Sleep(10 * time.Millisecond) // a killed node refuses at once: no busy loop
	}
	return op
}

func (l *clusterLoad) get(node int, kind, u, token string) {
	l.send(node, kind, "GET", u, token, nil)
}

// flow runs a native flow of kind on node: create, then submit body.
func (l *clusterLoad) flow(node int, kind string, body map[string]any) (clusterOp, map[string]any) {
	base := l.c.nodes[node].apiBase
	op := l.send(node, kind+" flow", "GET", base+"/self-service/"+kind+"/api", "", nil)
	var f flowJSON
	if op.err != nil || op.status != http.StatusOK || json.Unmarshal(op.body, &f) != nil || f.ID == "" {
		return op, nil
	}
	b, _ := json.Marshal(body)
	op = l.send(node, kind, "POST", base+"/self-service/"+kind+"?flow="+f.ID, "", b)
	var res map[string]any
	if op.err == nil && op.status == http.StatusOK {
		_ = json.Unmarshal(op.body, &res)
	}
	return op, res
}

func (l *clusterLoad) register(node int) {
	u := &ackedUser{node: node, email: "cluster-" + randHex(8) + "@example.com", password: randPassword()}
	op, res := l.flow(node, "registration", map[string]any{"method": "password", "password": u.password, "traits": map[string]any{"email": u.email}})
	if res == nil {
		return
	}
	u.ackAt = op.end
	u.token, _ = res["session_token"].(string)
	if ident, ok := res["identity"].(map[string]any); ok {
		u.id, _ = ident["id"].(string)
	}
	l.mu.Lock()
	l.regs = append(l.regs, u)
	l.mu.Unlock()
}

func (l *clusterLoad) login(node int, email, password string) {
	l.flow(node, "login", map[string]any{"method": "password", "identifier": email, "password": password})
}

// summary counts ops by node, kind and status (or "error").
func summary(ops []clusterOp) string {
	counts := map[string]int{}
	for _, op := range ops {
		s := fmt.Sprint(op.status)
		if op.err != nil {
			s = "error"
		}
		counts[fmt.Sprintf("node %d %s %s", op.node+1, op.kind, s)]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n\t%-40s %d", k, counts[k])
	}
	return b.String()
}

// loadUsers registers a few users for the load's logins, whoami and gate.
func (c *cluster) loadUsers(t *testing.T) []user {
	users := make([]user, 6)
	for i := range users {
		users[i] = registerNative(t, c.nodes[i%len(c.nodes)])
	}
	return users
}

// ---------------------------------------------------------------------------
// Reload

// reloadUnderLoad reloads node idx six times (a changed session lifespan,
// alternately as a Caddyfile and as JSON through /adapt) while all nodes
// serve load. Every answer is 200; a connection error counts only if it
// is one of the two a Caddy reload causes by itself (see
// TestHardeningReloadUnderLoad), and those are logged.
func (c *cluster) reloadUnderLoad(t *testing.T, idx int) {
	in := c.nodes[idx]
	users := c.loadUsers(t)
	l := c.startLoad([]int{0, 1, 2}, 2, users)
	time.Sleep(300 * time.Millisecond)
	var windows []hrWindow
	for i := 0; i < 6; i++ {
		opts := in.opts
		opts.GlobalKratos = append(slices.Clone(opts.GlobalKratos), fmt.Sprintf("session_lifespan %dh", 25+i))
		body, ct := []byte(in.caddyfile(opts)), "text/caddyfile"
		if i%2 == 1 {
			r, out := do(t, plainHTTP(), "POST", in.adminBase+"/adapt", hdr{"Content-Type": "text/caddyfile"}, body)
			wantStatus(t, r, out, http.StatusOK)
			var adapted struct {
				Result json.RawMessage `json:"result"`
			}
			if err := json.Unmarshal(out, &adapted); err != nil || len(adapted.Result) == 0 {
				t.Fatalf("adapting the Caddyfile: %v %s", err, clip(out))
			}
			body, ct = adapted.Result, "application/json"
		}
		w := hrWindow{start: time.Now()}
		r, out := do(t, plainHTTP(), "POST", in.adminBase+"/load", hdr{"Content-Type": ct}, body)
		w.end = time.Now()
		windows = append(windows, w)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("reload %d of node %d: %d %s", i, idx+1, r.StatusCode, clip(out))
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	ops := l.finish()
	inWindow := func(at time.Time) bool {
		for _, w := range windows {
			if !at.Before(w.start.Add(-100*time.Millisecond)) && !at.After(w.end.Add(time.Second)) {
				return true
			}
		}
		return false
	}
	var attributed int
	for _, op := range ops {
		switch {
		case op.err != nil && op.node == idx && inWindow(op.start) && (op.reused || isConnReset(op.err)):
			attributed++
			t.Logf("connection error attributed to the reload: node %d %s: %v (reused connection %v)", op.node+1, op.kind, op.err, op.reused)
			if op.email != "" {
				// Its answer was lost: it must not have been applied (the
				// address is still free on another node).
				l := &clusterLoad{c: c, hcs: []*http.Client{hbClient(), hbClient(), hbClient()}}
				other := (idx + 1) % 3
				if r, _ := l.flow(other, "registration", map[string]any{"method": "password", "password": randPassword(), "traits": map[string]any{"email": op.email}}); r.status != http.StatusOK {
					t.Errorf("the registration of %s lost its answer in a reload but was stored: registering it again on node %d: %d %s", op.email, other+1, r.status, clip(r.body))
				}
			}
		case op.err != nil:
			t.Errorf("node %d %s: connection error: %v", op.node+1, op.kind, op.err)
		case op.status != http.StatusOK:
			t.Errorf("node %d %s: %d during the reloads, want 200: %s", op.node+1, op.kind, op.status, clip(op.body))
		}
	}
	t.Logf("6 reloads of node %d under load: %d requests, %d connection errors attributed to Caddy's reload; by node, kind and status:%s", idx+1, len(ops), attributed, summary(ops))
	if !in.running() {
		t.Fatalf("node %d died during the reloads", idx+1)
	}
	for _, u := range l.acked() {
		for i := range c.nodes {
			if s, st := whoamiToken(t, c.nodes[i], u.token); st != http.StatusOK || s.Identity.Id != u.id {
				t.Errorf("a registration made during the reloads (node %d) is not good on node %d: %d", u.node+1, i+1, st)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Database cut

// databaseCut cuts the nodes off PostgreSQL (every connection closed,
// new ones refused) for 3 s under load, then restores it. Every answer
// is 200 or a 503 in Kratos's error shape, never another status; the
// nodes serve again without a restart.
func (c *cluster) databaseCut(t *testing.T) {
	users := c.loadUsers(t)
	pids := make([]int, len(c.nodes))
	for i, in := range c.nodes {
		pids[i] = in.pid()
	}
	l := c.startLoad([]int{0, 1, 2}, 2, users)
	time.Sleep(500 * time.Millisecond)
	cutAt := time.Now()
	c.db.cut()
	time.Sleep(3 * time.Second)
	c.db.restore(t)
	restoredAt := time.Now()
	// Until every node answers every kind with 200 again (bounded).
	recovered := make([]time.Duration, len(c.nodes))
	for i, in := range c.nodes {
		deadline := time.Now().Add(20 * time.Second)
		for {
			if c.nodeHealthy(t, in, users[i]) {
				recovered[i] = time.Since(restoredAt)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("node %d does not serve 20 s after the database came back", i+1)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	ops := l.finish()

	var during503, other int
	for _, op := range ops {
		if op.err != nil {
			t.Errorf("node %d %s at %+v from the cut: connection error: %v", op.node+1, op.kind, op.start.Sub(cutAt).Round(time.Millisecond), op.err)
			continue
		}
		switch op.status {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			if msg := kratos503Shape(op.body); msg != "" || op.header.Get("Retry-After") == "" {
				if msg == "" {
					msg = "no Retry-After"
				}
				t.Errorf("node %d %s: a 503 not in Kratos's error shape (%s): %s", op.node+1, op.kind, msg, clip(op.body))
				other++
			} else if op.end.After(cutAt) {
				during503++
			}
		default:
			other++
			if other <= 20 {
				t.Errorf("DATABASE CUT: node %d %s at %+v from the cut answered %d, want 200 or a 503 in Kratos's error shape: %s",
					op.node+1, op.kind, op.start.Sub(cutAt).Round(time.Millisecond), op.status, clip(op.body))
			}
		}
	}
	if other > 20 {
		t.Errorf("DATABASE CUT: %d answers in all were neither 200 nor a 503 in Kratos's error shape", other)
	}
	t.Logf("database cut for 3 s under load: %d requests, %d answered 503; nodes served again %v after the restore; by node, kind and status:%s",
		len(ops), during503, recovered, summary(ops))
	if during503 == 0 {
		t.Errorf("no request was answered 503 during the cut: the load did not reach the database (is the proxy in the path?)")
	}
	for i, in := range c.nodes {
		if !in.running() || in.pid() != pids[i] {
			t.Errorf("node %d was restarted or died (pid %d, was %d)", i+1, in.pid(), pids[i])
		}
	}
	// Sessions made before the cut are still good everywhere.
	for i, in := range c.nodes {
		for _, u := range users {
			if _, st := whoamiToken(t, in, u.Token); st != http.StatusOK {
				t.Errorf("after the cut: a session made before it is refused by node %d: %d", i+1, st)
			}
		}
	}
}

// nodeHealthy reports whether in answers whoami, the gate, a login and a
// registration with 200.
func (c *cluster) nodeHealthy(t *testing.T, in *instance, u user) bool {
	hc := hbClient()
	for _, p := range []string{in.apiBase + "/sessions/whoami", in.appBase + "/private/ok"} {
		r, _, err := hbSend(hc, "GET", p, hdr{"Accept": "application/json", "X-Session-Token": u.Token}, nil)
		if err != nil || r.StatusCode != http.StatusOK {
			return false
		}
	}
	l := &clusterLoad{c: c, hcs: []*http.Client{hc, hc, hc}}
	node := slices.Index(c.nodes, in)
	if op, _ := l.flow(node, "login", map[string]any{"method": "password", "identifier": u.Email, "password": u.Password}); op.status != http.StatusOK {
		return false
	}
	email := randEmail()
	op, _ := l.flow(node, "registration", map[string]any{"method": "password", "password": randPassword(), "traits": map[string]any{"email": email}})
	return op.status == http.StatusOK
}

// kratos503Shape returns "" when body is Kratos's error shape for 503
// ({"error":{"code":503,"status":"Service Unavailable","message":…}}),
// else what is wrong.
func kratos503Shape(body []byte) string {
	var e errorJSON
	if err := json.Unmarshal(body, &e); err != nil {
		return "not JSON: " + err.Error()
	}
	switch {
	case e.Error == nil:
		return "no error object"
	case e.Error.Code != http.StatusServiceUnavailable:
		return fmt.Sprintf("error.code %d", e.Error.Code)
	case e.Error.Status != http.StatusText(http.StatusServiceUnavailable):
		return fmt.Sprintf("error.status %q", e.Error.Status)
	case e.Error.Message == "":
		return "empty error.message"
	}
	return ""
}

// pid is the running process's id (0 if none).
func (in *instance) pid() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd == nil || in.cmd.Process == nil {
		return 0
	}
	return in.cmd.Process.Pid
}

// ---------------------------------------------------------------------------
// kill -9

// killUnderLoad kills node idx with SIGKILL while all three nodes serve
// registrations, logins, whoami and the gate. Every registration that
// was answered 200 (on any node, the killed one included) exists on the
// survivors; the survivors never fail a request; the killed node, started
// again, serves them too.
func (c *cluster) killUnderLoad(t *testing.T, idx int) {
	users := c.loadUsers(t)
	l := c.startLoad([]int{0, 1, 2}, 2, users)
	time.Sleep(time.Second)
	killedAt := time.Now()
	c.nodes[idx].kill()
	time.Sleep(1500 * time.Millisecond)
	ops := l.finish()

	var failed int
	for _, op := range ops {
		if op.node == idx {
			continue // the killed node: what it answered counts only as acknowledged registrations
		}
		if op.err != nil || op.status != http.StatusOK {
			failed++
			if failed <= 20 {
				t.Errorf("survivor node %d %s at %+v from the kill: %d %v %s", op.node+1, op.kind, op.start.Sub(killedAt).Round(time.Millisecond), op.status, op.err, clip(op.body))
			}
		}
	}
	acked := l.acked()
	var byKilled, ackedLate int
	for _, u := range acked {
		if u.node == idx {
			byKilled++
			if u.ackAt.After(killedAt.Add(-200 * time.Millisecond)) {
				ackedLate++
			}
		}
	}
	t.Logf("kill -9 of node %d under load: %d requests, %d registrations acknowledged (%d by the killed node, %d of them in its last 200 ms); by node, kind and status:%s",
		idx+1, len(ops), len(acked), byKilled, ackedLate, summary(ops))
	if byKilled == 0 {
		t.Errorf("the killed node acknowledged no registration: the test proves nothing about its writes")
	}
	survivors := []int{}
	for i := range c.nodes {
		if i != idx {
			survivors = append(survivors, i)
		}
	}
	check := func(nodes []int, what string) {
		for _, u := range acked {
			for _, i := range nodes {
				s, st := whoamiToken(t, c.nodes[i], u.token)
				if st != http.StatusOK || s.Identity.Id != u.id {
					t.Errorf("%s: the registration of %s acknowledged by node %d: whoami on node %d %d", what, u.email, u.node+1, i+1, st)
				}
			}
			if u.node == idx {
				in := c.nodes[nodes[0]]
				if r := nativeLoginRaw(t, in, u.email, u.password); r.status != http.StatusOK {
					t.Errorf("%s: %s (registered on the killed node) cannot log in on node %d: %d %s", what, u.email, nodes[0]+1, r.status, clip(r.body))
				}
			}
		}
	}
	check(survivors, "after the kill")
	if err := c.nodes[idx].start(); err != nil {
		t.Fatalf("node %d does not start again after kill -9: %v", idx+1, err)
	}
	check([]int{idx}, "restarted node")
}

// ---------------------------------------------------------------------------
// A TCP proxy that can cut the database off

// tcpProxy forwards connections from addr to target until cut.
type tcpProxy struct {
	target, addr string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startTCPProxy listens on a free port; it is closed when t ends.
func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{target: target, addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), conns: map[net.Conn]struct{}{}}
	p.restore(t)
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

// restore listens again (on the same address).
func (p *tcpProxy) restore(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("proxy listen %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.pipe(conn) }()
		}
	}()
}

func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) pipe(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client) || !p.track(server) {
		client.Close()
		server.Close()
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(server, client)
	go cp(client, server)
	<-done
	// Either side closing ends both (a killed node's backend must
	// notice at once, as it would without the proxy).
	client.Close()
	server.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// cut closes the listener (new connections are refused) and every
// forwarded connection.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.Close()
	}
}
