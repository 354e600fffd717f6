package sessionstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// CheckReport lists integrity problems found by Check; empty slices mean a
// consistent store.
type CheckReport struct {
	Identities int
	Sessions   int
	// Problems describes each inconsistency found, one line each.
	Problems []string
}

// IndexAudit is the part of Check every engine shares: the identifier
// index against the identities. Identities holds every stored identity by
// id; Entry is called for every stored index entry, then Unindexed.
type IndexAudit struct {
	Report     *CheckReport
	Identities map[string]*Identity
	indexed    map[string]bool
}

// Entry checks one index entry (type, identifier) owned by owner: its
// identity must exist and list it. name says in a problem which entry it is.
func (a *IndexAudit) Entry(name, owner, typ, ident string) {
	id, ok := a.Identities[owner]
	if !ok {
		a.problem("%s points at missing identity %s", name, owner)
		return
	}
	if a.indexed == nil {
		a.indexed = map[string]bool{}
	}
	a.indexed[owner+"\x00"+typ+"\x00"+ident] = true
	idx, _ := IdentityIndexes(id)
	if !slices.Contains(idx, IndexEntry{typ, ident}) {
		a.problem("%s points at identity %s which does not list it", name, owner)
	}
}

// Unindexed reports every identifier of an identity that no entry seen
// by Entry indexes.
func (a *IndexAudit) Unindexed() {
	for _, id := range a.Identities {
		idx, err := IdentityIndexes(id)
		if err != nil {
			a.problem("identity %s: %v", id.ID, err)
			continue
		}
		for _, ci := range idx {
			if !a.indexed[id.ID+"\x00"+ci.Type+"\x00"+ci.Identifier] {
				a.problem("identity %s: %s identifier %q not indexed", id.ID, ci.Type, ci.Identifier)
			}
		}
	}
}

func (a *IndexAudit) problem(format string, args ...any) {
	a.Report.Problems = append(a.Report.Problems, fmt.Sprintf(format, args...))
}

// Check walks the whole store in one read transaction and verifies the
// invariants the write paths maintain: every credential index points at an
// identity that lists that identifier, every identity's identifiers are
// indexed to it, every session id index points at a stored session of the
// same id, and every session belongs to a stored identity. The crash tests
// run it after kill -9; operators can run it too.
func (s *Store) Check(ctx context.Context) (_ *CheckReport, err error) {
	defer WrapError(&err, "check")
	if err := s.guard.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.guard.Leave()
	rep := &CheckReport{}
	err = s.db.View(func(txn *badger.Txn) error {
		identities := map[string]*Identity{}
		if err := iteratePrefix(txn, prefixIdentity, func(key, val []byte) error {
			var id Identity
			if err := json.Unmarshal(val, &id); err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("identity %s: undecodable: %v", key, err))
				return nil
			}
			identities[id.ID] = &id
			return nil
		}); err != nil {
			return err
		}
		rep.Identities = len(identities)
		audit := IndexAudit{Report: rep, Identities: identities}
		if err := iteratePrefix(txn, prefixCredential, func(key, val []byte) error {
			rest := strings.TrimPrefix(string(key), prefixCredential)
			typ, ident, _ := strings.Cut(rest, "/")
			audit.Entry("index "+string(key), string(val), typ, ident)
			return nil
		}); err != nil {
			return err
		}
		audit.Unindexed()
		sessions := map[string]string{} // token hash hex → session id
		if err := iteratePrefix(txn, prefixSession, func(key, val []byte) error {
			var sess Session
			if err := json.Unmarshal(val, &sess); err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("session %s: undecodable: %v", key, err))
				return nil
			}
			rep.Sessions++
			sessions[strings.TrimPrefix(string(key), prefixSession)] = sess.ID
			if _, ok := identities[sess.IdentityID]; !ok {
				rep.Problems = append(rep.Problems, fmt.Sprintf("session %s belongs to missing identity %s", sess.ID, sess.IdentityID))
			}
			return nil
		}); err != nil {
			return err
		}
		return iteratePrefix(txn, prefixSessionID, func(key, val []byte) error {
			id := strings.TrimPrefix(string(key), prefixSessionID)
			h := string(val)
			if len(val) == 32 {
				h = hex.EncodeToString(val)
			}
			if sid, ok := sessions[h]; !ok || sid != id {
				rep.Problems = append(rep.Problems, fmt.Sprintf("session index %s points at no session", id))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

func iteratePrefix(txn *badger.Txn, prefix string, fn func(key, val []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(prefix)
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		if item.IsDeletedOrExpired() {
			continue
		}
		val, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		if err := fn(item.KeyCopy(nil), val); err != nil {
			return err
		}
	}
	return nil
}
