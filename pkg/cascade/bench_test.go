package cascade_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hubhooks/hubhooks/pkg/cascade"
)

// BenchmarkExpand: rule expansion of one domain event (once per event in
// the expander), for a one-to-one rule and for a cascading one.
func BenchmarkExpand(b *testing.B) {
	rules := cascade.Default()
	name := strings.Repeat("x", 300)
	tests := []struct {
		name, subject string
		data          map[string]any
	}{
		{"USER.UPDATED", "USER.UPDATED", map[string]any{"user": map[string]any{"id": "u1", "name": name, "email": "u1@example.com"}}},
		{"API.CREATED cascade", "API.CREATED", map[string]any{
			"api": map[string]any{"id": "a1", "name": name}, "version": map[string]any{"id": "v1"},
			"billingPlan": map[string]any{"id": "p1", "price": 10}, "subscription": map[string]any{"id": "s1"},
		}},
	}
	for _, tt := range tests {
		data, err := structpb.NewStruct(tt.data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rules.Expand(tt.subject, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
