package cascade_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/cascade/cascadetest"
)

var specRows = cascadetest.SpecRows

// entityField is the payload field of each entity (docs/cascade.md).
var entityField = map[string]string{
	"API": "api", "API_VERSION": "version", "BILLINGPLAN": "billingPlan",
	"SUBSCRIPTION": "subscription", "TARGET_GROUP": "targetGroup", "USER": "user",
	"TEAM": "team", "ORGANIZATION": "organization", "APP": "app",
	"APP_KEY": "appKey", "API_ENDPOINT": "apiEndpoint", "DOCUMENTATION": "documentation",
	"WORKFLOW": "workflow", "ANNOUNCEMENT": "announcement", "DISCUSSION": "discussion",
	"MESSAGE": "message", "DISCUSSION_COMMENT": "discussionComment", "JOBS_REQUEST": "jobsRequest",
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatalf("structpb.NewStruct: %v", err)
	}
	return s
}

func types(evs []cascade.Emitted) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func TestDefaultHasEveryRowInOrder(t *testing.T) {
	rules := cascade.Default()
	all := rules.All()
	if len(all) != len(specRows) || len(specRows) != 44 {
		t.Fatalf("got %d rules, spec has %d (want 44)", len(all), len(specRows))
	}
	for i, row := range specRows {
		if all[i].Subject != row.Subject || all[i].Name != row.Name {
			t.Errorf("row %d: got %s %q, want %s %q", i+1, all[i].Subject, all[i].Name, row.Subject, row.Name)
		}
	}
}

func TestExpandEveryRow(t *testing.T) {
	rules := cascade.Default()
	for i, row := range specRows {
		t.Run(row.Subject, func(t *testing.T) {
			// Without baseUrls: exactly the listed events.
			got, err := rules.Expand(row.Subject, mustStruct(t, map[string]any{"x": 1}))
			if err != nil {
				t.Fatalf("row %d: Expand: %v", i+1, err)
			}
			if !slices.Equal(types(got), row.Emits) {
				t.Errorf("row %d: got %v, want %v", i+1, types(got), row.Emits)
			}
			// With two baseUrls: only row 1 gains TARGET_GROUP.CREATED events.
			got, err = rules.Expand(row.Subject, mustStruct(t, map[string]any{"baseUrls": []any{"a", "b"}}))
			if err != nil {
				t.Fatalf("row %d: Expand: %v", i+1, err)
			}
			want := row.Emits
			if row.Subject == "API.CREATED" {
				want = append(slices.Clone(want), "TARGET_GROUP.CREATED", "TARGET_GROUP.CREATED")
			}
			if !slices.Equal(types(got), want) {
				t.Errorf("row %d with baseUrls: got %v, want %v", i+1, types(got), want)
			}
		})
	}
}

func TestExpandPayload(t *testing.T) {
	rules := cascade.Default()
	tests := []struct {
		name    string
		subject string
		data    map[string]any
		want    []string // JSON payloads, in order
		wantTyp []string
	}{
		{
			name:    "fields present: each event carries its entity",
			subject: "BILLINGPLAN.CREATED",
			data: map[string]any{
				"api": map[string]any{"id": "a1"}, "version": map[string]any{"id": "v1"},
				"billingPlan": map[string]any{"id": "p1", "price": 10},
			},
			want:    []string{`{"id":"a1"}`, `{"id":"v1"}`, `{"id":"p1","price":10}`},
			wantTyp: []string{"API.UPDATED", "API_VERSION.UPDATED", "BILLINGPLAN.CREATED"},
		},
		{
			name:    "field absent: whole data",
			subject: "BILLINGPLAN.CREATED",
			data:    map[string]any{"billingPlan": map[string]any{"id": "p1"}, "z": true},
			want: []string{
				`{"billingPlan":{"id":"p1"},"z":true}`,
				`{"billingPlan":{"id":"p1"},"z":true}`,
				`{"id":"p1"}`,
			},
			wantTyp: []string{"API.UPDATED", "API_VERSION.UPDATED", "BILLINGPLAN.CREATED"},
		},
		{
			name:    "null field counts as absent, scalar field is the payload",
			subject: "USER.CREATED",
			data:    map[string]any{"app": nil, "appKey": "k", "user": []any{1, "x"}},
			want:    []string{`{"app":null,"appKey":"k","user":[1,"x"]}`, `"k"`, `[1,"x"]`},
			wantTyp: []string{"APP.CREATED", "APP_KEY.CREATED", "USER.CREATED"},
		},
		{
			name:    "row 1 forEach baseUrls: one TARGET_GROUP.CREATED per element",
			subject: "API.CREATED",
			data: map[string]any{
				"api":         map[string]any{"id": "a1"},
				"targetGroup": map[string]any{"ignored": true},
				"baseUrls":    []any{map[string]any{"url": "https://a"}, map[string]any{"url": "https://b"}},
			},
			want: []string{
				`{"id":"a1"}`,
				`{"id":"a1"}`,
				`{"api":{"id":"a1"},"baseUrls":[{"url":"https://a"},{"url":"https://b"}],"targetGroup":{"ignored":true}}`,
				`{"api":{"id":"a1"},"baseUrls":[{"url":"https://a"},{"url":"https://b"}],"targetGroup":{"ignored":true}}`,
				`{"api":{"id":"a1"},"baseUrls":[{"url":"https://a"},{"url":"https://b"}],"targetGroup":{"ignored":true}}`,
				`{"url":"https://a"}`,
				`{"url":"https://b"}`,
			},
			wantTyp: []string{"API.CREATED", "API.UPDATED", "API_VERSION.CREATED", "BILLINGPLAN.CREATED", "SUBSCRIPTION.CREATED", "TARGET_GROUP.CREATED", "TARGET_GROUP.CREATED"},
		},
		{
			name:    "row 1 baseUrls empty list: none",
			subject: "API.CREATED",
			data:    map[string]any{"baseUrls": []any{}},
			want:    []string{`{"baseUrls":[]}`, `{"baseUrls":[]}`, `{"baseUrls":[]}`, `{"baseUrls":[]}`, `{"baseUrls":[]}`},
			wantTyp: []string{"API.CREATED", "API.UPDATED", "API_VERSION.CREATED", "BILLINGPLAN.CREATED", "SUBSCRIPTION.CREATED"},
		},
		{
			name:    "row 1 baseUrls not a list: none",
			subject: "API.CREATED",
			data:    map[string]any{"baseUrls": "https://a"},
			want:    []string{`{"baseUrls":"https://a"}`, `{"baseUrls":"https://a"}`, `{"baseUrls":"https://a"}`, `{"baseUrls":"https://a"}`, `{"baseUrls":"https://a"}`},
			wantTyp: []string{"API.CREATED", "API.UPDATED", "API_VERSION.CREATED", "BILLINGPLAN.CREATED", "SUBSCRIPTION.CREATED"},
		},
		{
			name:    "base url row: targetGroup field",
			subject: "BASE_URL.UPDATED",
			data:    map[string]any{"targetGroup": map[string]any{"id": "tg"}, "baseUrl": "x"},
			want:    []string{`{"id":"tg"}`},
			wantTyp: []string{"TARGET_GROUP.UPDATED"},
		},
		{
			name:    "no data: empty object",
			subject: "TEAM.UPDATED",
			data:    nil,
			want:    []string{`{}`},
			wantTyp: []string{"TEAM.UPDATED"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var data *structpb.Struct
			if tt.data != nil {
				data = mustStruct(t, tt.data)
			}
			got, err := rules.Expand(tt.subject, data)
			if err != nil {
				t.Fatalf("Expand: %v", err)
			}
			if !slices.Equal(types(got), tt.wantTyp) {
				t.Fatalf("types: got %v, want %v", types(got), tt.wantTyp)
			}
			for i, e := range got {
				if string(e.Data) != tt.want[i] {
					t.Errorf("event %d (%s): got %s, want %s", i, e.Type, e.Data, tt.want[i])
				}
			}
		})
	}
}

func TestExpandErrors(t *testing.T) {
	rules := cascade.Default()
	if _, err := rules.Expand("API.FROBNICATED", nil); !errors.Is(err, cascade.ErrUnknownSubject) {
		t.Errorf("unknown subject: got %v, want ErrUnknownSubject", err)
	}
	nan := &structpb.Struct{Fields: map[string]*structpb.Value{"team": structpb.NewNumberValue(nanValue())}}
	// structpb turns non-finite numbers into strings, so they never break JSON.
	if got, err := rules.Expand("TEAM.UPDATED", nan); err != nil || string(got[0].Data) != `"NaN"` {
		t.Errorf("NaN payload: got %v, %v; want \"NaN\"", got, err)
	}
	many := make([]any, cascade.MaxForEach+1)
	for i := range many {
		many[i] = i
	}
	if _, err := rules.Expand("API.CREATED", mustStruct(t, map[string]any{"baseUrls": many})); !errors.Is(err, cascade.ErrPayload) {
		t.Errorf("too many baseUrls: got %v, want ErrPayload", err)
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func TestDefaultFromFields(t *testing.T) {
	for _, r := range cascade.Default().All() {
		for _, e := range r.Emits {
			entity, _, _ := strings.Cut(e.Type, ".")
			if e.ForEach != "" {
				if r.Subject != "API.CREATED" || e.Type != "TARGET_GROUP.CREATED" || e.ForEach != "baseUrls" || e.From != "" {
					t.Errorf("%s: unexpected forEach emit %+v", r.Subject, e)
				}
				continue
			}
			if want := entityField[entity]; e.From != want {
				t.Errorf("%s emits %s from %q, want %q", r.Subject, e.Type, e.From, want)
			}
		}
	}
}

func TestStreamSubjectsAndTypes(t *testing.T) {
	rules := cascade.Default()
	wantStreams := []string{"ANNOUNCEMENT.*", "API.*", "API_ENDPOINT.*", "API_VERSION.*", "APP.*", "APP_KEY.*",
		"BASE_URL.*", "BILLINGPLAN.*", "DISCUSSION.*", "DISCUSSION_COMMENT.*", "DOCUMENTATION.*",
		"JOBS_REQUEST.*", "MESSAGE.*", "ORGANIZATION.*", "SUBSCRIPTION.*", "TEAM.*", "USER.*", "WORKFLOW.*"}
	if got := rules.StreamSubjects(); !slices.Equal(got, wantStreams) {
		t.Errorf("StreamSubjects: got %v, want %v", got, wantStreams)
	}
	seen := map[string]bool{}
	for _, row := range specRows {
		for _, e := range row.Emits {
			seen[e] = true
		}
	}
	seen["TARGET_GROUP.CREATED"] = true
	var want []string
	for k := range seen {
		want = append(want, k)
	}
	slices.Sort(want)
	if got := rules.WebhookEventTypes(); !slices.Equal(got, want) {
		t.Errorf("WebhookEventTypes: got %v, want %v", got, want)
	}
	resp := rules.EventTypes()
	if !slices.Equal(resp.GetWebhookEventTypes(), want) {
		t.Errorf("EventTypes().WebhookEventTypes: got %v", resp.GetWebhookEventTypes())
	}
	if len(resp.GetRules()) != 44 {
		t.Fatalf("EventTypes: %d rules, want 44", len(resp.GetRules()))
	}
	first := resp.GetRules()[0]
	if first.GetDomainSubject() != "API.CREATED" || first.GetName() != "API Created" || len(first.GetEmits()) != 6 {
		t.Errorf("EventTypes rule 1: %v", first)
	}
	if e := first.GetEmits()[5]; e.GetType() != "TARGET_GROUP.CREATED" || e.GetForEach() != "baseUrls" {
		t.Errorf("EventTypes rule 1 emit 6: %v", e)
	}
	if e := first.GetEmits()[3]; e.GetFrom() != "billingPlan" {
		t.Errorf("EventTypes rule 1 emit 4: %v", e)
	}
	// The response is a fresh copy each time.
	resp.Rules[0].Name = "changed"
	if rules.EventTypes().GetRules()[0].GetName() != "API Created" {
		t.Error("EventTypes returned shared state")
	}
	r, ok := rules.Lookup("API.CREATED")
	if !ok {
		t.Fatal("Lookup(API.CREATED) not found")
	}
	r.Emits[0].Type = "X.Y"
	if r2, _ := rules.Lookup("API.CREATED"); r2.Emits[0].Type != "API.CREATED" {
		t.Error("Lookup returned shared state")
	}
	if _, ok := rules.Lookup("API.FROBNICATED"); ok {
		t.Error("Lookup(API.FROBNICATED) found")
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" = valid
	}{
		{name: "default file", in: string(cascade.DefaultJSON())},
		{
			name: "minimal with explicit from",
			in:   `{"version":1,"rules":[{"subject":"FOO.CREATED","name":"Foo","emits":[{"type":"FOO.CREATED","from":"foo"}]}]}`,
		},
		{
			name:    "unknown entity without from",
			in:      `{"version":1,"rules":[{"subject":"FOO.CREATED","name":"Foo","emits":[{"type":"FOO.CREATED"}]}]}`,
			wantErr: "unknown entity FOO",
		},
		{
			name:    "duplicate subject",
			in:      `{"version":1,"payloadFields":{"FOO":"foo"},"rules":[{"subject":"FOO.CREATED","name":"a","emits":[]},{"subject":"FOO.CREATED","name":"b","emits":[]}]}`,
			wantErr: "duplicate subject",
		},
		{
			name:    "lower case subject",
			in:      `{"version":1,"rules":[{"subject":"foo.created","name":"a","emits":[]}]}`,
			wantErr: "UPPER_SNAKE_CASE",
		},
		{
			name:    "subject with wildcard",
			in:      `{"version":1,"rules":[{"subject":"FOO.*","name":"a","emits":[]}]}`,
			wantErr: "UPPER_SNAKE_CASE",
		},
		{
			name:    "bad emitted type",
			in:      `{"version":1,"rules":[{"subject":"FOO.A","name":"a","emits":[{"type":"FOO","from":"x"}]}]}`,
			wantErr: "type must be",
		},
		{
			name:    "bad forEach",
			in:      `{"version":1,"rules":[{"subject":"FOO.A","name":"a","emits":[{"type":"FOO.A","forEach":"a.b"}]}]}`,
			wantErr: "forEach",
		},
		{
			name:    "from and forEach",
			in:      `{"version":1,"rules":[{"subject":"FOO.A","name":"a","emits":[{"type":"FOO.A","forEach":"xs","from":"x"}]}]}`,
			wantErr: "exclusive",
		},
		{
			name:    "unknown json field",
			in:      `{"version":1,"rules":[{"subject":"FOO.A","name":"a","emits":[{"type":"FOO.A","for_each":"xs"}]}]}`,
			wantErr: "unknown field",
		},
		{name: "wrong version", in: `{"version":2,"rules":[{"subject":"FOO.A","name":"a","emits":[]}]}`, wantErr: "version 2"},
		{name: "no rules", in: `{"version":1,"rules":[]}`, wantErr: "no rules"},
		{name: "missing name", in: `{"version":1,"rules":[{"subject":"FOO.A","emits":[]}]}`, wantErr: "name is required"},
		{name: "not json", in: `rules:`, wantErr: "decode"},
		{name: "trailing data", in: `{"version":1,"rules":[{"subject":"FOO.A","name":"a","emits":[]}]} {}`, wantErr: "trailing"},
		{name: "bad payload field", in: `{"version":1,"payloadFields":{"FOO":"a b"},"rules":[{"subject":"FOO.A","name":"a","emits":[]}]}`, wantErr: "not a field name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := cascade.Load(strings.NewReader(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if len(rs.All()) == 0 {
					t.Fatal("no rules loaded")
				}
				return
			}
			if err == nil {
				t.Fatalf("Load: nil error, want %q", tt.wantErr)
			}
			if !errors.Is(err, cascade.ErrInvalidRules) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load: %v, want ErrInvalidRules containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadAlternativeRules(t *testing.T) {
	rs, err := cascade.Load(strings.NewReader(`{"version":1,"payloadFields":{"FOO":"foo"},"rules":[
		{"subject":"FOO.CREATED","name":"Foo Created","emits":[{"type":"FOO.CREATED"},{"type":"BAR.CREATED","from":"bar"},{"type":"BAZ.CREATED","forEach":"bazs"}]}]}`))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	got, err := rs.Expand("FOO.CREATED", mustStruct(t, map[string]any{"foo": 1, "bar": 2, "bazs": []any{3}}))
	if err != nil {
		t.Fatalf("Expand: %v", err)
	}
	var payloads []string
	for _, e := range got {
		payloads = append(payloads, e.Type+"="+string(e.Data))
	}
	want := []string{"FOO.CREATED=1", "BAR.CREATED=2", "BAZ.CREATED=3"}
	if !slices.Equal(payloads, want) {
		t.Errorf("got %v, want %v", payloads, want)
	}
	if got := rs.StreamSubjects(); !slices.Equal(got, []string{"FOO.*"}) {
		t.Errorf("StreamSubjects: %v", got)
	}
	if _, err := rs.Expand("API.CREATED", nil); !errors.Is(err, cascade.ErrUnknownSubject) {
		t.Errorf("API.CREATED on alternative rules: %v", err)
	}
}

func TestExpandIsDeterministic(t *testing.T) {
	rules := cascade.Default()
	data := mustStruct(t, map[string]any{"z": 1, "a": map[string]any{"y": 2, "b": 3}, "m": []any{"q", 1.5}})
	first, err := rules.Expand("ORGANIZATION.CREATED", data)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, _ := rules.Expand("ORGANIZATION.CREATED", data)
		for i := range first {
			if string(again[i].Data) != string(first[i].Data) {
				t.Fatalf("payload %d differs: %s vs %s", i, again[i].Data, first[i].Data)
			}
		}
	}
	var v any
	if err := json.Unmarshal(first[0].Data, &v); err != nil {
		t.Fatalf("payload is not JSON: %v", err)
	}
}
