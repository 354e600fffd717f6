package flows

import "encoding/json"

func jsonUnmarshal(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

func jsonMarshal(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
