package cascade_test

import (
	"encoding/json"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hubhooks/hubhooks/pkg/cascade"
)

// FuzzExpand feeds arbitrary Struct data (decoded from protobuf bytes, as the
// expander receives it) to every rule: Expand must not panic, must return
// valid JSON payloads, and must fail only with ErrPayload.
func FuzzExpand(f *testing.F) {
	seeds := []map[string]any{
		{},
		{"api": map[string]any{"id": "a"}, "baseUrls": []any{"x", map[string]any{"u": 1}}},
		{"baseUrls": "nope", "billingPlan": nil, "version": 3.5},
		{"baseUrls": []any{nil, []any{}, true}},
	}
	for _, m := range seeds {
		s, err := structpb.NewStruct(m)
		if err != nil {
			f.Fatal(err)
		}
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
	}
	rules := cascade.Default()
	subjects := rules.Subjects()
	f.Fuzz(func(t *testing.T, raw []byte, which uint8) {
		data := &structpb.Struct{}
		if err := proto.Unmarshal(raw, data); err != nil {
			return
		}
		subject := subjects[int(which)%len(subjects)]
		rule, _ := rules.Lookup(subject)
		got, err := rules.Expand(subject, data)
		if err != nil {
			if !errors.Is(err, cascade.ErrPayload) {
				t.Fatalf("Expand(%s): unexpected error %v", subject, err)
			}
			return
		}
		fixed := 0
		for _, e := range rule.Emits {
			if e.ForEach == "" {
				fixed++
			}
		}
		if len(got) < fixed {
			t.Fatalf("Expand(%s): %d events, rule has %d fixed emits", subject, len(got), fixed)
		}
		for i, e := range got {
			if !json.Valid(e.Data) {
				t.Fatalf("event %d (%s): invalid JSON %q", i, e.Type, e.Data)
			}
		}
	})
}
