package courier

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres/pgtest"
)

// Three gateways on one PostgreSQL database, each with its own store
// (pool, caches) and courier, sending through one SMTP server: every
// queued mail is delivered exactly once. The claim is UpdateRecord's
// row-locked read-modify-write: of couriers racing for one message, the
// first sets a lease and the others find it leased and skip it.
func TestThreeCouriersOnPostgresDeliverOnce(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	srv := startSMTP(t, smtpOpts{dataDelay: 10 * time.Millisecond})
	cfg := fastConfig(plainURI(srv.Addr))
	cfg.PollInterval = 20 * time.Millisecond
	var couriers []*Courier
	for range 3 {
		st, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		couriers = append(couriers, newCourier(t, st, cfg, nil))
	}
	const n = 30
	var ids []string
	for i := range n {
		id, err := couriers[i%3].Enqueue(context.Background(), Message{To: fmt.Sprintf("u%d@example.org", i),
			Template: TemplateLoginCodeValid, Data: TemplateData{LoginCode: fmt.Sprintf("%06d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	for _, c := range couriers {
		wg.Add(1)
		go func() { defer wg.Done(); c.Start(); c.Wake() }()
	}
	wg.Wait()
	srv.waitMessages(n, 20*time.Second)
	for _, id := range ids {
		waitState(t, couriers[0], id, StateSent, 10*time.Second)
	}
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive now
	seen := map[string]int{}
	for _, m := range srv.Messages() {
		seen[m.EnvelopeTo[0]]++
	}
	for i := range n {
		if to := fmt.Sprintf("u%d@example.org", i); seen[to] != 1 {
			t.Errorf("%s got %d copies", to, seen[to])
		}
	}
	if len(srv.Messages()) != n {
		t.Fatalf("delivered %d messages for %d queued", len(srv.Messages()), n)
	}
}
