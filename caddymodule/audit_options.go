package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-kratos/caddy-kratos/audit"
	"github.com/caddy-kratos/caddy-kratos/flows"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// AuditOptions configure the audit trail: every security-relevant event
// (sign-ins and failures, sign-ups, logouts, revocations, credential and
// profile changes, recoveries, verifications, admin changes, rate-limit
// blocks and gate denials, the last two aggregated per minute) is kept in
// the storage, listed by GET /kratos/admin/audit and `caddy-kratos kratos
// audit`, and written to Caddy's log under the logger kratos.audit.
type AuditOptions struct {
	// MaxAge is how long a record is kept. At least 1h. Default: 2160h
	// (90 days).
	MaxAge caddy.Duration `json:"max_age,omitempty"`

	// MaxRecords bounds the records kept; a trim every minute deletes
	// the oldest beyond it. Default: 1000000.
	MaxRecords int `json:"max_records,omitempty"`

	// Log writes every record to Caddy's log (logger kratos.audit) as
	// structured fields. Default: true.
	Log *bool `json:"log,omitempty"`
}

// unmarshalAuditOption reads the `audit` block of the kratos global
// option (one of optionTopics):
//
//	audit {
//		max_age <duration>
//		max_records <n>
//		log on|off
//	}
func (a *App) unmarshalAuditOption(o *globalOption) (bool, error) {
	if o.name != "audit" {
		return false, nil
	}
	if a.Audit == nil {
		a.Audit = new(AuditOptions)
	}
	return true, o.block(a.Audit.unmarshalCaddyfile)
}

// unmarshalCaddyfile reads the audit block's lines.
func (o *AuditOptions) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if seen[key] {
			return d.Errf("audit: duplicate subdirective %q", key)
		}
		seen[key] = true
		var v string
		if !d.AllArgs(&v) {
			return d.ArgErr()
		}
		switch key {
		case "max_age":
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("audit: max_age: invalid duration %q (want e.g. 720h or 90d)", v)
			}
			if err := checkAuditMaxAge(dur); err != nil {
				return d.Errf("audit: max_age: %v", err)
			}
			o.MaxAge = caddy.Duration(dur)
		case "max_records":
			n, err := strconv.Atoi(v)
			if err != nil {
				return d.Errf("audit: max_records: %q is not a whole number", v)
			}
			if err := checkAuditMaxRecords(n); err != nil {
				return d.Errf("audit: max_records: %v", err)
			}
			o.MaxRecords = n
		case "log":
			on, err := onOff(v)
			if err != nil {
				return d.Errf("audit: log: %v", err)
			}
			o.Log = &on
		default:
			return d.Errf("audit: unrecognized subdirective %q (want max_age, max_records or log)", key)
		}
	}
	return nil
}

func onOff(v string) (bool, error) {
	switch v {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("want on or off, not %q", v)
}

func checkAuditMaxAge(d time.Duration) error {
	if d < time.Hour {
		return errors.New("must be at least 1h")
	}
	return nil
}

func checkAuditMaxRecords(n int) error {
	if n < 1 {
		return errors.New("must be at least 1")
	}
	return nil
}

// auditOptions checks the options (a JSON config has not been through
// the Caddyfile's checks) and maps them to the trail's.
func (a *App) auditOptions() (audit.Options, error) {
	opts := audit.Options{Logger: a.logger.Named("audit"), LogEvents: true}
	o := a.Audit
	if o == nil {
		return opts, nil
	}
	if o.MaxAge != 0 {
		if err := checkAuditMaxAge(time.Duration(o.MaxAge)); err != nil {
			return opts, fmt.Errorf("audit.max_age: %w", err)
		}
		opts.MaxAge = time.Duration(o.MaxAge)
	}
	if o.MaxRecords != 0 {
		if err := checkAuditMaxRecords(o.MaxRecords); err != nil {
			return opts, fmt.Errorf("audit.max_records: %w", err)
		}
		opts.MaxRecords = o.MaxRecords
	}
	if o.Log != nil {
		opts.LogEvents = *o.Log
	}
	return opts, nil
}

// startAudit starts the audit trail over store and hands it to the
// engine, which records into it and lists it in the admin API.
func (a *App) startAudit(store sessionstore.Storage, cfg *flows.Config) error {
	opts, err := a.auditOptions()
	if err != nil {
		return err
	}
	a.trail = audit.New(store, opts)
	cfg.Events = append(cfg.Events, a.trail)
	cfg.AuditLog = a.trail
	return nil
}

// auditStopTimeout bounds how long stopping waits for the queued records.
const auditStopTimeout = 5 * time.Second

// stopAudit writes what the trail still holds and stops it.
func (a *App) stopAudit() error {
	if a.trail == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditStopTimeout)
	defer cancel()
	err := a.trail.Close(ctx)
	if err != nil {
		return fmt.Errorf("stopping the kratos audit trail: %w", err)
	}
	return nil
}
