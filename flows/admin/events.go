package admin

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/event"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// The admin API's events: every change is recorded with the operator as
// actor and, for identity updates, what changed (state, schema, traits,
// metadata: before and after; credentials never).

// snapshot is what an identity update's event compares.
type snapshot struct {
	state, schemaID                     string
	traits, metadataPublic, metadataAdm json.RawMessage
}

func snapshotOf(ident *sessionstore.Identity) snapshot {
	return snapshot{state: ident.State, schemaID: ident.SchemaID, traits: bytes.Clone(ident.Traits),
		metadataPublic: bytes.Clone(ident.MetadataPublic), metadataAdm: bytes.Clone(ident.MetadataAdmin)}
}

// changes lists the fields that differ between before and after.
func changes(before, after snapshot) map[string]event.Change {
	out := map[string]event.Change{}
	if before.state != after.state {
		out["state"] = event.Change{Before: before.state, After: after.state}
	}
	if before.schemaID != after.schemaID {
		out["schema_id"] = event.Change{Before: before.schemaID, After: after.schemaID}
	}
	for _, f := range []struct {
		name    string
		old, nu json.RawMessage
	}{{"traits", before.traits, after.traits}, {"metadata_public", before.metadataPublic, after.metadataPublic},
		{"metadata_admin", before.metadataAdm, after.metadataAdm}} {
		if !jsonEqual(f.old, f.nu) {
			out[f.name] = event.Change{Before: rawOrNil(f.old), After: rawOrNil(f.nu)}
		}
	}
	return out
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func rawOrNil(b json.RawMessage) any {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	return json.RawMessage(bytes.Clone(b))
}

// emit records an administrative event for request r.
func (a *API) emit(r *http.Request, ev event.Event) {
	ev.Actor = event.ActorAdmin
	a.kernel.Events().Emit(r, ev)
}
