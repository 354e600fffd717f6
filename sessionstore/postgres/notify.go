package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Cross-node cache coherence. A write that changes a cached session or
// identity publishes, inside its transaction (so only on commit), a
// NOTIFY on the schema's channel with the changed keys:
//
//	s:<hex token hash>,<hex token hash>,…   sessions
//	i:<hex identity id>,…                    identities
//	*                                        everything (storage copy)
//
// Every node's listener drops those entries. The writer also drops them
// itself right after the commit, so its own next read is fresh at once;
// the other nodes follow within the notification's delivery time
// (measured by the cluster conformance test).
//
// The caches may serve or take entries only while the listener listens
// (cacheLive): when the connection is lost they are emptied and every
// read goes to the database until LISTEN is back, because notifications
// sent meanwhile are lost. The generation fence of the caches makes sure
// a read that started before the loss cannot put its value back.

const (
	kindSession  = 's'
	kindIdentity = 'i'
	flushAll     = "*"
	// maxPayload stays under NOTIFY's 8000-byte payload limit.
	maxPayload = 7000
	// maxKeysPerWrite: beyond this many keys one write asks every node
	// to flush instead (a mass revocation).
	maxKeysPerWrite = 2000
)

// publish notifies every node (this one included) that keys of kind
// changed, when tx commits.
func (s *Store) publish(ctx context.Context, tx pgx.Tx, kind byte, keys ...[]byte) error {
	if len(keys) == 0 {
		return nil
	}
	var payloads []string
	if len(keys) > maxKeysPerWrite {
		payloads = []string{flushAll}
	} else {
		var b strings.Builder
		for _, k := range keys {
			if len(k) == 0 {
				continue
			}
			if b.Len() > 0 && b.Len()+1+2*len(k) > maxPayload {
				payloads = append(payloads, b.String())
				b.Reset()
			}
			if b.Len() == 0 {
				b.WriteByte(kind)
				b.WriteByte(':')
			} else {
				b.WriteByte(',')
			}
			b.WriteString(hex.EncodeToString(k))
		}
		if b.Len() > 0 {
			payloads = append(payloads, b.String())
		}
	}
	if len(payloads) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", s.channel, payloads)
	return err
}

// publishAll asks every node to empty its caches.
func (s *Store) publishAll(ctx context.Context) error {
	return s.write(ctx, func() error {
		_, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", s.channel, flushAll)
		return err
	})
}

// handle applies one notification to this node's caches.
func (s *Store) handle(payload string) {
	if len(payload) < 2 || payload[1] != ':' {
		s.flushCaches() // "*", or a payload this version does not know: be safe
		return
	}
	for part := range strings.SplitSeq(payload[2:], ",") {
		k, err := hex.DecodeString(part)
		if err != nil {
			s.flushCaches()
			return
		}
		switch payload[0] {
		case kindSession:
			s.caches.InvalidateSession(k)
		case kindIdentity:
			s.caches.InvalidateIdentity(k)
		default:
			s.flushCaches()
			return
		}
	}
}

func (s *Store) flushCaches() {
	s.caches.Clear()
}

// CachesLive reports whether this node's notification connection listens
// and its caches serve; false means every read goes to the database (the
// connection is being re-established).
func (s *Store) CachesLive() bool { return s.cacheLive.Load() }

// liveCaches is the caches while they serve, else nil (read through).
func (s *Store) liveCaches() *ss.Caches {
	if s.cacheLive.Load() {
		return s.caches
	}
	return nil
}

// listen keeps a dedicated connection LISTENing on the schema's channel
// until ctx ends, reconnecting with backoff. up is closed after the first
// attempt (successful or not).
func (s *Store) listen(ctx context.Context, up chan struct{}) {
	defer s.bg.Done()
	var once sync.Once
	signalUp := func() { once.Do(func() { close(up) }) }
	defer signalUp()
	initial := s.opts.ReconnectDelay
	if initial <= 0 {
		initial = defaultReconnectDelay
	}
	delay := initial
	for ctx.Err() == nil {
		if s.holdListen.Load() {
			signalUp()
			select {
			case <-ctx.Done():
				return
			case <-s.listenWake:
			}
			continue
		}
		err := s.listenOnce(ctx, func() {
			// Notifications before this moment are lost: start empty.
			s.flushCaches()
			s.cacheLive.Store(true)
			delay = initial
			signalUp()
		})
		s.cacheLive.Store(false)
		s.flushCaches()
		s.listenPID.Store(0)
		if ctx.Err() != nil {
			return
		}
		s.logf("warn", "notification connection lost, caches off until it is back: %v", err)
		signalUp()
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		case <-s.listenWake:
		}
		delay = min(2*delay, maxReconnectDelay)
	}
}

func (s *Store) listenOnce(ctx context.Context, onUp func()) error {
	cctx, cancel := context.WithTimeout(ctx, s.connectTimeout())
	conn, err := pgx.ConnectConfig(cctx, s.connCfg.Copy())
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	s.listenPID.Store(conn.PgConn().PID())
	s.listenGen.Add(1)
	onUp()
	heartbeat := s.opts.HeartbeatInterval
	if heartbeat <= 0 {
		heartbeat = defaultHeartbeat
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, heartbeat)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			// Silence: make sure the connection still works (a
			// connection dropped by a firewall says nothing).
			pctx, cancel := context.WithTimeout(ctx, heartbeat)
			_, err = conn.Exec(pctx, "SELECT 1")
			cancel()
			if err != nil {
				return err
			}
			continue
		}
		if s.holdListen.Load() {
			return errors.New("held (test)")
		}
		s.handle(n.Payload)
	}
}
