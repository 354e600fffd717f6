package audit

import (
	"sync"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/event"
)

// maxAggKeys bounds the distinct keys of one window; beyond it, events
// are folded into one key per type and reason (client and gate left
// out), so an attacker varying addresses or Host headers adds at most
// this many records a window (per node), neither growing the map nor
// pushing older records out of the trail.
const maxAggKeys = 64

// aggKey is what one aggregated record stands for: a gate and its
// reason, or a rate-limit rule and the subject it blocked.
type aggKey struct {
	typ                     event.Type
	gate, reason, ip, ident string
}

// aggValue is a window's tally of one key.
type aggValue struct {
	first  time.Time
	count  int
	lastIP string
}

// aggregator tallies gate denials and rate-limit blocks between flushes.
type aggregator struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[aggKey]*aggValue
}

func (a *aggregator) init(now func() time.Time) {
	a.now = now
	a.m = make(map[aggKey]*aggValue)
}

// addGate tallies one gate denial.
func (a *aggregator) addGate(gate, reason, ip string) {
	a.tally(aggKey{typ: event.GateDenied, gate: gate, reason: reason}, ip, 1, time.Time{})
}

// add tallies an aggregated event (a rate-limit block, or a gate denial
// that came as an event).
func (a *aggregator) add(ev *event.Event) {
	k := aggKey{typ: ev.Type, gate: ev.Gate, reason: ev.Reason}
	if ev.Type == event.RateLimited {
		// Per rule and subject: a block of one address says something
		// different from a block of another.
		k.ip, k.ident = ev.IP, ev.Identifier
	}
	n := ev.Count
	if n <= 0 {
		n = 1
	}
	a.tally(k, ev.IP, n, ev.Time)
}

func (a *aggregator) tally(k aggKey, ip string, n int, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := a.m[k]
	if v == nil {
		if len(a.m) >= maxAggKeys {
			k.gate, k.ip, k.ident = "", "", ""
			v = a.m[k]
		}
		if v == nil {
			if at.IsZero() {
				at = a.now()
			}
			v = &aggValue{first: at.UTC()}
			a.m[k] = v
		}
	}
	v.count += n
	if ip != "" {
		v.lastIP = ip
	}
}

// flush returns the window's records and starts a new window.
func (a *aggregator) flush() []item {
	a.mu.Lock()
	m := a.m
	a.m = make(map[aggKey]*aggValue, len(m))
	a.mu.Unlock()
	if len(m) == 0 {
		return nil
	}
	out := make([]item, 0, len(m))
	for k, v := range m {
		ev := event.Event{Time: v.first, Type: k.typ, Gate: k.gate, Reason: k.reason, IP: v.lastIP,
			Identifier: k.ident, Count: v.count}
		out = append(out, item{key: newKey(ev.Time), ev: ev})
	}
	return out
}
