package locale

import "sort"

// MessageInfo describes one Kratos UiText id: its type, the context keys
// Kratos sends with it, and the variables that feed the Go verbs of
// Kratos's English template, in order (what the flow's English "text" was
// formatted from).
type MessageInfo struct {
	Type    string
	Context []string
	Args    []string
}

// messageInfo is Kratos's UiText catalogue (../shared/spec/messages.md, the
// same ids as flows/catalogue.go).
var messageInfo = map[int]MessageInfo{
	1010001: {"info", nil, nil},
	1010002: {"info", []string{"provider", "provider_id"}, []string{"provider"}},
	1010003: {"info", nil, nil},
	1010004: {"info", nil, nil},
	1010005: {"info", nil, nil},
	1010006: {"info", nil, nil},
	1010007: {"info", nil, nil},
	1010008: {"info", nil, nil},
	1010009: {"info", nil, nil},
	1010010: {"info", nil, nil},
	1010011: {"info", nil, nil},
	1010012: {"info", nil, nil},
	1010013: {"info", nil, nil},
	1010014: {"info", nil, nil},
	1010015: {"info", nil, nil},
	1010016: {"info", []string{"duplicateIdentifier", "provider", "newLoginUrl", "duplicate_identifier", "new_login_url", "available_credential_types", "available_providers"}, []string{"duplicate_identifier", "provider"}},
	1010017: {"info", nil, nil},
	1010018: {"info", []string{"provider"}, []string{"provider"}},
	1010019: {"info", nil, nil},
	1010021: {"info", nil, nil},
	1010022: {"info", nil, nil},
	1010023: {"info", []string{"address", "channel"}, []string{"address"}},
	1010024: {"info", nil, nil},
	1010025: {"info", nil, nil},
	1040001: {"info", nil, nil},
	1040002: {"info", []string{"provider", "provider_id"}, []string{"provider"}},
	1040003: {"info", nil, nil},
	1040004: {"info", nil, nil},
	1040005: {"info", nil, nil},
	1040006: {"info", nil, nil},
	1040007: {"info", nil, nil},
	1040008: {"info", nil, nil},
	1040009: {"info", nil, nil},
	1050001: {"success", nil, nil},
	1050002: {"info", []string{"provider"}, []string{"provider"}},
	1050003: {"info", []string{"provider"}, []string{"provider"}},
	1050004: {"info", nil, nil},
	1050005: {"info", nil, nil},
	1050006: {"info", []string{"secret"}, []string{"secret"}},
	1050007: {"info", nil, nil},
	1050008: {"info", nil, nil},
	1050009: {"info", []string{"secret"}, []string{"secret"}},
	1050010: {"info", nil, nil},
	1050011: {"info", nil, nil},
	1050012: {"info", nil, nil},
	1050013: {"info", nil, nil},
	1050014: {"info", []string{"used_at", "used_at_unix"}, []string{"used_at"}},
	1050015: {"info", []string{"secrets"}, []string{"secrets"}},
	1050016: {"info", nil, nil},
	1050017: {"info", nil, nil},
	1050018: {"info", []string{"display_name", "added_at", "added_at_unix"}, []string{"display_name"}},
	1050019: {"info", nil, nil},
	1050020: {"info", []string{"display_name", "added_at", "added_at_unix"}, []string{"display_name"}},
	1050023: {"info", nil, nil},
	1060001: {"success", []string{"privilegedSessionExpiresAt", "privileged_session_expires_at", "privileged_session_expires_at_unix"}, []string{"privileged_session_expires_at_unix_until_minutes"}},
	1060002: {"info", nil, nil},
	1060003: {"info", nil, nil},
	1060004: {"info", []string{"masked_address"}, []string{"masked_address"}},
	1060005: {"info", nil, nil},
	1060006: {"info", nil, nil},
	1060007: {"info", nil, nil},
	1070001: {"info", nil, nil},
	1070002: {"info", []string{"title", "name"}, []string{"title"}},
	1070003: {"info", nil, nil},
	1070004: {"info", nil, nil},
	1070005: {"info", nil, nil},
	1070006: {"info", nil, nil},
	1070007: {"info", nil, nil},
	1070008: {"info", nil, nil},
	1070009: {"info", nil, nil},
	1070010: {"info", nil, nil},
	1070011: {"info", nil, nil},
	1070012: {"info", nil, nil},
	1070013: {"info", nil, nil},
	1070014: {"info", nil, nil},
	1070015: {"info", nil, nil},
	1070016: {"info", nil, nil},
	1070017: {"info", nil, nil},
	1070018: {"info", nil, nil},
	1080001: {"info", nil, nil},
	1080002: {"success", nil, nil},
	1080003: {"info", nil, nil},
	1080004: {"info", nil, nil},
	1080005: {"success", nil, nil},
	4000001: {"error", []string{"reason"}, []string{"reason"}},
	4000002: {"error", []string{"property"}, []string{"property"}},
	4000003: {"error", []string{"min_length", "actual_length"}, []string{"min_length", "actual_length"}},
	4000004: {"error", []string{"pattern"}, []string{"pattern"}},
	4000005: {"error", []string{"reason"}, []string{"reason"}},
	4000006: {"error", nil, nil},
	4000007: {"error", nil, nil},
	4000008: {"error", nil, nil},
	4000009: {"error", nil, nil},
	4000010: {"error", nil, nil},
	4000011: {"error", nil, nil},
	4000012: {"error", nil, nil},
	4000013: {"error", nil, nil},
	4000014: {"error", nil, nil},
	4000015: {"error", nil, nil},
	4000016: {"error", nil, nil},
	4000017: {"error", []string{"max_length", "actual_length"}, []string{"max_length", "actual_length"}},
	4000018: {"error", []string{"minimum", "actual"}, []string{"minimum", "actual"}},
	4000019: {"error", []string{"minimum", "actual"}, []string{"minimum", "actual"}},
	4000020: {"error", []string{"maximum", "actual"}, []string{"maximum", "actual"}},
	4000021: {"error", []string{"maximum", "actual"}, []string{"maximum", "actual"}},
	4000022: {"error", []string{"base", "actual"}, []string{"actual", "base"}},
	4000023: {"error", []string{"max_items", "actual_items"}, []string{"max_items", "actual_items"}},
	4000024: {"error", []string{"min_items", "actual_items"}, []string{"min_items", "actual_items"}},
	4000025: {"error", []string{"index_a", "index_b"}, []string{"index_a", "index_b"}},
	4000026: {"error", []string{"allowed_types", "actual_type"}, []string{"allowed_types", "actual_type"}},
	4000027: {"error", nil, nil},
	4000028: {"error", []string{"available_credential_types", "available_oidc_providers", "credential_identifier_hint"}, []string{"text"}},
	4000029: {"error", []string{"expected"}, []string{"expected"}},
	4000030: {"error", nil, nil},
	4000031: {"error", nil, nil},
	4000032: {"error", []string{"min_length", "actual_length"}, []string{"min_length", "actual_length"}},
	4000033: {"error", []string{"max_length", "actual_length"}, []string{"max_length", "actual_length"}},
	4000034: {"error", []string{"breaches"}, nil},
	4000035: {"error", nil, nil},
	4000036: {"error", nil, nil},
	4000037: {"error", nil, nil},
	4000038: {"error", nil, nil},
	4000039: {"error", nil, nil},
	4000040: {"error", []string{"value"}, nil},
	4000041: {"error", []string{"value"}, nil},
	4000042: {"error", nil, nil},
	4000043: {"error", nil, nil},
	4000044: {"error", nil, nil},
	4000045: {"error", nil, nil},
	4000046: {"error", nil, nil},
	4010001: {"error", []string{"expired_at", "expired_at_unix"}, []string{"expired_at_unix_since_minutes"}},
	4010002: {"error", nil, nil},
	4010003: {"error", nil, nil},
	4010004: {"error", nil, nil},
	4010005: {"error", nil, nil},
	4010006: {"error", nil, nil},
	4010007: {"error", nil, nil},
	4010008: {"error", nil, nil},
	4010009: {"error", nil, nil},
	4010010: {"error", nil, nil},
	4010011: {"error", nil, nil},
	4040001: {"error", []string{"expired_at", "expired_at_unix"}, []string{"expired_at_unix_since_minutes"}},
	4040002: {"error", nil, nil},
	4040003: {"error", nil, nil},
	4050001: {"error", []string{"expired_at", "expired_at_unix"}, []string{"expired_at_unix_since_minutes"}},
	4050002: {"error", nil, nil},
	4060001: {"error", nil, nil},
	4060002: {"error", nil, nil},
	4060004: {"error", nil, nil},
	4060005: {"error", []string{"expired_at", "expired_at_unix"}, []string{"expired_at_unix_since_minutes"}},
	4060006: {"error", nil, nil},
	4070001: {"error", nil, nil},
	4070002: {"error", nil, nil},
	4070003: {"error", nil, nil},
	4070005: {"error", []string{"expired_at", "expired_at_unix"}, []string{"expired_at_unix_since_minutes"}},
	4070006: {"error", nil, nil},
	5000001: {"error", []string{"reason"}, []string{"reason"}},
	5000002: {"error", nil, nil},
	5000003: {"error", nil, nil},
}

// MessageIDs returns every known UiText id in ascending order.
func MessageIDs() []int {
	ids := make([]int, 0, len(messageInfo))
	for id := range messageInfo {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

// Message returns the description of UiText id.
func Message(id int) (MessageInfo, bool) {
	m, ok := messageInfo[id]
	return m, ok
}

// Derived variables: Kratos formats some texts from values it does not put
// in the context (minutes since a flow expired, minutes left of the
// privileged session). Translations get them computed from the context at
// render time, under the names Ory Elements uses.
const (
	VarExpiredMinutes    = "expired_at_unix_since_minutes"
	VarPrivilegedMinutes = "privileged_session_expires_at_unix_until_minutes"
	// VarText is the flow's English text of the message, for texts Kratos
	// computes from values the context lacks (4000028).
	VarText = "text"
)

// Vars returns the variables a template of id may use: the context keys,
// the derived variables and "text".
func (m MessageInfo) Vars() []string {
	out := append([]string(nil), m.Context...)
	for _, k := range m.Context {
		switch k {
		case "expired_at":
			out = append(out, VarExpiredMinutes)
		case "privileged_session_expires_at":
			out = append(out, VarPrivilegedMinutes)
		}
	}
	out = append(out, VarText)
	sort.Strings(out)
	return out
}
