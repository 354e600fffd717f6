package sessionstore

import (
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"time"
)

// The compact cache (internal/cache.Compact) keeps sessions and shared
// identities as records in this binary form, which decodes without JSON
// and into few heap objects: every string of a record is a substring of
// one string, every byte field a slice of one byte slice.
//
// Layout: a format byte, the length of the byte region (uint32), the
// fields in order (strings as uvarint length and bytes; times as a length
// byte and time.Time's binary form, which keeps the zone the way JSON
// decoding sets it; slices and byte fields as uvarint n+1, 0 for nil),
// then the byte region holding the byte fields' contents in order.

const recordFormat = 1

var errBadRecord = errors.New("sessionstore: malformed cache record")

type recordWriter struct {
	b     []byte // the record
	bytes []byte // the byte region, appended at the end
	// failed: a value has no record form (a time whose zone offset
	// time.Time cannot encode); the record is not cached.
	failed bool
}

func (w *recordWriter) begin(dst []byte) {
	w.b = append(dst, recordFormat, 0, 0, 0, 0)
	w.bytes = w.bytes[:0]
	w.failed = false
}

// end appends the byte region and returns the record, which started at
// start in w.b; false when it cannot be cached.
func (w *recordWriter) end(start int) ([]byte, bool) {
	binary.LittleEndian.PutUint32(w.b[start+1:], uint32(len(w.bytes))) // #nosec G115 -- records are far below 4 GiB
	w.b = append(w.b, w.bytes...)
	return w.b, !w.failed
}

func (w *recordWriter) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }

func (w *recordWriter) str(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *recordWriter) boolean(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *recordWriter) time(t time.Time) {
	at := len(w.b)
	b, err := t.AppendBinary(append(w.b, 0))
	if err != nil {
		w.failed = true
		w.b = append(w.b, 0)
		return
	}
	w.b = b
	w.b[at] = byte(len(w.b) - at - 1) // #nosec G115 -- time's binary form is 15 or 16 bytes
}

// count writes a slice's or map's length, n+1, or 0 for nil.
func (w *recordWriter) count(n int, isNil bool) {
	if isNil {
		w.uvarint(0)
		return
	}
	w.uvarint(uint64(n) + 1) // #nosec G115 -- n >= 0
}

func (w *recordWriter) raw(b []byte) {
	w.count(len(b), b == nil)
	w.bytes = append(w.bytes, b...)
}

func (w *recordWriter) optStr(p *string) {
	if p == nil {
		w.b = append(w.b, 0)
		return
	}
	w.b = append(w.b, 1)
	w.str(*p)
}

type recordReader struct {
	b     []byte // the fields
	s     string // b as a string: strings are its substrings
	off   int
	bytes []byte // the byte region (the reader's own copy)
	boff  int
	bad   bool
}

func (r *recordReader) begin(rec []byte) bool {
	if len(rec) < 5 || rec[0] != recordFormat {
		return false
	}
	n := int(binary.LittleEndian.Uint32(rec[1:]))
	if n > len(rec)-5 {
		return false
	}
	r.b = rec[5 : len(rec)-n]
	r.s = string(r.b)
	if n > 0 {
		r.bytes = slices.Clone(rec[len(rec)-n:])
	}
	return true
}

func (r *recordReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.bad = true
		r.off = len(r.b)
		return 0
	}
	r.off += n
	return v
}

// size reads a length and checks that at least n*min bytes remain.
func (r *recordReader) size(min int) int {
	v := r.uvarint()
	if v > uint64(len(r.b)-r.off) || (min > 0 && v*uint64(min) > uint64(len(r.b)-r.off)) { // #nosec G115 -- min > 0
		r.bad = true
		r.off = len(r.b)
		return 0
	}
	return int(v) // #nosec G115 -- bounded by the record length
}

func (r *recordReader) str() string {
	n := r.size(1)
	s := r.s[r.off : r.off+n]
	r.off += n
	return s
}

func (r *recordReader) boolean() bool {
	if r.off >= len(r.b) {
		r.bad = true
		return false
	}
	v := r.b[r.off] == 1
	r.off++
	return v
}

func (r *recordReader) time() time.Time {
	var t time.Time
	if r.off >= len(r.b) {
		r.bad = true
		return t
	}
	n := int(r.b[r.off])
	r.off++
	if n > len(r.b)-r.off {
		r.bad = true
		r.off = len(r.b)
		return t
	}
	if err := t.UnmarshalBinary(r.b[r.off : r.off+n]); err != nil {
		r.bad = true
	}
	r.off += n
	return t
}

// count reads a slice's length and whether it is nil; each element takes
// at least min bytes of the record.
func (r *recordReader) count(min int) (int, bool) {
	v := r.uvarint()
	if v == 0 {
		return 0, true
	}
	if v-1 > uint64(len(r.b)-r.off+len(r.bytes)) || (v-1)*uint64(min) > uint64(len(r.b)-r.off) { // #nosec G115 -- min >= 0
		r.bad = true
		r.off = len(r.b)
		return 0, false
	}
	return int(v - 1), false // #nosec G115 -- bounded by the record length
}

func (r *recordReader) raw() []byte {
	n, isNil := r.count(0)
	if isNil || r.bad {
		return nil
	}
	if n > len(r.bytes)-r.boff {
		r.bad = true
		return nil
	}
	if n == 0 {
		return []byte{} // empty, not nil (r.bytes is nil when all are empty)
	}
	b := r.bytes[r.boff : r.boff+n : r.boff+n]
	r.boff += n
	return b
}

func (r *recordReader) optStr() *string {
	if !r.boolean() || r.bad {
		return nil
	}
	s := r.str()
	return &s
}

// done reports whether the record was read whole and well.
func (r *recordReader) done() bool {
	return !r.bad && r.off == len(r.b) && r.boff == len(r.bytes)
}

// appendSessionRecord appends sess's record to dst; false when it has
// none (see recordWriter.failed).
func appendSessionRecord(w *recordWriter, dst []byte, sess *Session) ([]byte, bool) {
	start := len(dst)
	w.begin(dst)
	w.str(sess.ID)
	w.str(sess.IdentityID)
	w.boolean(sess.Active)
	w.time(sess.ExpiresAt)
	w.time(sess.AuthenticatedAt)
	w.time(sess.IssuedAt)
	w.str(sess.AAL)
	w.count(len(sess.AuthenticationMethods), sess.AuthenticationMethods == nil)
	for _, m := range sess.AuthenticationMethods {
		w.str(m.Method)
		w.str(m.AAL)
		w.time(m.CompletedAt)
	}
	w.count(len(sess.Devices), sess.Devices == nil)
	for _, d := range sess.Devices {
		w.str(d.ID)
		w.optStr(d.IPAddress)
		w.optStr(d.UserAgent)
		w.str(d.Location)
	}
	w.raw(sess.TokenHash)
	w.raw(sess.LogoutTokenHash)
	return w.end(start)
}

// decodeSessionRecord decodes a record of appendSessionRecord.
func decodeSessionRecord(rec []byte) (*Session, error) {
	var r recordReader
	if !r.begin(rec) {
		return nil, errBadRecord
	}
	s := &Session{
		ID:              r.str(),
		IdentityID:      r.str(),
		Active:          r.boolean(),
		ExpiresAt:       r.time(),
		AuthenticatedAt: r.time(),
		IssuedAt:        r.time(),
		AAL:             intern(r.str()),
	}
	if n, isNil := r.count(3); !isNil && !r.bad {
		s.AuthenticationMethods = make([]AuthMethod, n)
		for i := range s.AuthenticationMethods {
			m := &s.AuthenticationMethods[i]
			m.Method, m.AAL, m.CompletedAt = intern(r.str()), intern(r.str()), r.time()
		}
	}
	if n, isNil := r.count(4); !isNil && !r.bad {
		s.Devices = make([]Device, n)
		for i := range s.Devices {
			d := &s.Devices[i]
			d.ID, d.IPAddress, d.UserAgent, d.Location = r.str(), r.optStr(), r.optStr(), r.str()
		}
	}
	s.TokenHash = r.raw()
	s.LogoutTokenHash = r.raw()
	if !r.done() {
		return nil, errBadRecord
	}
	return s, nil
}

// appendIdentityRecord appends the record of a shared identity (see
// sharedIdentity) to dst; false when it has none.
func appendIdentityRecord(w *recordWriter, dst []byte, id *Identity) ([]byte, bool) {
	start := len(dst)
	w.begin(dst)
	w.str(id.ID)
	w.str(id.SchemaID)
	w.str(id.State)
	w.time(id.StateChangedAt)
	w.raw(id.Traits)
	w.count(len(id.VerifiableAddresses), id.VerifiableAddresses == nil)
	for _, a := range id.VerifiableAddresses {
		w.str(a.ID)
		w.str(a.Value)
		w.boolean(a.Verified)
		w.str(a.Via)
		w.str(a.Status)
		if a.VerifiedAt == nil {
			w.boolean(false)
		} else {
			w.boolean(true)
			w.time(*a.VerifiedAt)
		}
		w.time(a.CreatedAt)
		w.time(a.UpdatedAt)
	}
	w.count(len(id.RecoveryAddresses), id.RecoveryAddresses == nil)
	for _, a := range id.RecoveryAddresses {
		w.str(a.ID)
		w.str(a.Value)
		w.str(a.Via)
		w.time(a.CreatedAt)
		w.time(a.UpdatedAt)
	}
	w.raw(id.MetadataPublic)
	w.raw(id.MetadataAdmin)
	w.time(id.CreatedAt)
	w.time(id.UpdatedAt)
	w.count(len(id.Credentials), id.Credentials == nil)
	for _, t := range slices.Sorted(maps.Keys(id.Credentials)) {
		c := id.Credentials[t]
		w.str(t)
		w.str(c.Type)
		w.count(len(c.Identifiers), c.Identifiers == nil)
		for _, s := range c.Identifiers {
			w.str(s)
		}
		w.raw(c.Config)
		w.uvarint(uint64(int64(c.Version))) // #nosec G115 -- read back as int64
		w.time(c.CreatedAt)
		w.time(c.UpdatedAt)
	}
	w.uvarint(id.Version)
	w.boolean(id.trimmed)
	return w.end(start)
}

// decodeIdentityRecord decodes a record of appendIdentityRecord.
func decodeIdentityRecord(rec []byte) (*Identity, error) {
	var r recordReader
	if !r.begin(rec) {
		return nil, errBadRecord
	}
	id := &Identity{
		ID:             r.str(),
		SchemaID:       intern(r.str()),
		State:          intern(r.str()),
		StateChangedAt: r.time(),
		Traits:         r.raw(),
	}
	if n, isNil := r.count(8); !isNil && !r.bad {
		id.VerifiableAddresses = make([]VerifiableAddress, n)
		for i := range id.VerifiableAddresses {
			a := &id.VerifiableAddresses[i]
			a.ID, a.Value, a.Verified, a.Via, a.Status = r.str(), r.str(), r.boolean(), intern(r.str()), intern(r.str())
			if r.boolean() {
				t := r.time()
				a.VerifiedAt = &t
			}
			a.CreatedAt, a.UpdatedAt = r.time(), r.time()
		}
	}
	if n, isNil := r.count(5); !isNil && !r.bad {
		id.RecoveryAddresses = make([]RecoveryAddress, n)
		for i := range id.RecoveryAddresses {
			a := &id.RecoveryAddresses[i]
			a.ID, a.Value, a.Via, a.CreatedAt, a.UpdatedAt = r.str(), r.str(), intern(r.str()), r.time(), r.time()
		}
	}
	id.MetadataPublic = r.raw()
	id.MetadataAdmin = r.raw()
	id.CreatedAt, id.UpdatedAt = r.time(), r.time()
	if n, isNil := r.count(7); !isNil && !r.bad {
		id.Credentials = make(map[string]Credential, n)
		for range n {
			t := r.str()
			c := Credential{Type: intern(r.str())}
			if m, isNil := r.count(1); !isNil && !r.bad {
				c.Identifiers = make([]string, m)
				for i := range c.Identifiers {
					c.Identifiers[i] = r.str()
				}
			}
			c.Config = r.raw()
			c.Version = int(int64(r.uvarint())) // #nosec G115 -- written from an int
			c.CreatedAt, c.UpdatedAt = r.time(), r.time()
			if r.bad {
				break
			}
			id.Credentials[intern(t)] = c
		}
	}
	id.Version = r.uvarint()
	id.trimmed = r.boolean()
	if !r.done() {
		return nil, errBadRecord
	}
	return id, nil
}
