package cascade

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/types/known/structpb"
)

// Emitted is one webhook event expanded from a domain event.
type Emitted struct {
	// Type is the webhook event type.
	Type string
	// Data is the payload as JSON (object keys sorted, so the same input
	// always gives the same bytes).
	Data json.RawMessage
}

// Expand applies the rule for subject to a domain event's data and returns
// the webhook events in rule order; the position in the slice is the index
// for webhook.EventID. data may be nil (payloads are then {}). Errors wrap
// ErrUnknownSubject or ErrPayload.
func (rs *Rules) Expand(subject string, data *structpb.Struct) ([]Emitted, error) {
	i, ok := rs.bySubject[subject]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSubject, subject)
	}
	rule := &rs.rules[i]
	fields := data.GetFields()
	var whole json.RawMessage
	wholeData := func() (json.RawMessage, error) {
		if whole == nil {
			b, err := marshalStruct(data)
			if err != nil {
				return nil, err
			}
			whole = b
		}
		return whole, nil
	}
	out := make([]Emitted, 0, len(rule.Emits))
	for _, e := range rule.Emits {
		if e.ForEach != "" {
			list := fields[e.ForEach].GetListValue()
			if len(list.GetValues()) > MaxForEach {
				return nil, fmt.Errorf("%w: %s: %d elements in %q, at most %d", ErrPayload, e.Type, len(list.GetValues()), e.ForEach, MaxForEach)
			}
			for _, v := range list.GetValues() {
				b, err := marshalValue(v)
				if err != nil {
					return nil, fmt.Errorf("%w: %s from %s[]: %w", ErrPayload, e.Type, e.ForEach, err)
				}
				out = append(out, Emitted{Type: e.Type, Data: b})
			}
			continue
		}
		if v, ok := fields[e.From]; ok && !isNull(v) {
			b, err := marshalValue(v)
			if err != nil {
				return nil, fmt.Errorf("%w: %s from %s: %w", ErrPayload, e.Type, e.From, err)
			}
			out = append(out, Emitted{Type: e.Type, Data: b})
			continue
		}
		b, err := wholeData()
		if err != nil {
			return nil, fmt.Errorf("%w: %s (whole data): %w", ErrPayload, e.Type, err)
		}
		out = append(out, Emitted{Type: e.Type, Data: b})
	}
	return out, nil
}

// isNull reports a JSON null (or an unset Value, which protobuf decodes the
// same way); a null field counts as absent.
func isNull(v *structpb.Value) bool {
	if v == nil || v.GetKind() == nil {
		return true
	}
	_, null := v.GetKind().(*structpb.Value_NullValue)
	return null
}

func marshalStruct(s *structpb.Struct) (json.RawMessage, error) {
	if s == nil {
		return json.RawMessage("{}"), nil
	}
	return json.Marshal(s.AsMap())
}

func marshalValue(v *structpb.Value) (json.RawMessage, error) {
	return json.Marshal(v.AsInterface())
}
