package routing_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/routing"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func TestRoute(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	all := &hubhooksv1.CallbackUrl{Id: "url_all", Url: "https://a.example/", CreatedAt: timestamppb.New(t0)}
	plans := &hubhooksv1.CallbackUrl{Id: "url_plans", Url: "https://b.example/", CreatedAt: timestamppb.New(t0), EventTypes: []string{"BILLINGPLAN.CREATED", "BILLINGPLAN.UPDATED"}}
	off := &hubhooksv1.CallbackUrl{Id: "url_off", Url: "https://c.example/", CreatedAt: timestamppb.New(t0), Disabled: true, DisabledReason: "failed every attempt for 120h"}
	late := &hubhooksv1.CallbackUrl{Id: "url_late", Url: "https://d.example/", CreatedAt: timestamppb.New(t0.Add(time.Hour))}
	hub := func(on bool, enabledAt time.Time, urls ...*hubhooksv1.CallbackUrl) *hubhooksv1.HubConfig {
		return &hubhooksv1.HubConfig{HubId: "acme", EventsEnabled: on, EventsEnabledAt: timestamppb.New(enabledAt), CallbackUrls: urls}
	}
	type skip struct{ id, reason string }
	tests := []struct {
		name    string
		cfg     *hubhooksv1.HubConfig
		typ     string
		arrived time.Time
		wantTo  []string
		wantOut []skip
	}{
		{"every URL takes every type", hub(true, t0, all), "API.CREATED", t0.Add(time.Minute), []string{"url_all"}, nil},
		{"type filter lets its types through", hub(true, t0, all, plans), "BILLINGPLAN.UPDATED", t0.Add(time.Minute), []string{"url_all", "url_plans"}, nil},
		{"type filter keeps others out", hub(true, t0, all, plans), "API.CREATED", t0.Add(time.Minute), []string{"url_all"}, []skip{{"url_plans", routing.TypeFiltered}}},
		{"disabled URL", hub(true, t0, all, off), "API.CREATED", t0.Add(time.Minute), []string{"url_all"}, []skip{{"url_off", routing.URLDisabled}}},
		{"URL added after the event", hub(true, t0, all, late), "API.CREATED", t0.Add(time.Minute), []string{"url_all"}, []skip{{"url_late", routing.ArrivedBeforeURL}}},
		{"unknown arrival (a replay) ignores the URL's age", hub(true, t0, late), "API.CREATED", time.Time{}, []string{"url_late"}, nil},
		{"triggers off", hub(false, t0, all, plans), "API.CREATED", t0.Add(time.Minute), nil, []skip{{"url_all", routing.TriggersOff}, {"url_plans", routing.TriggersOff}}},
		{"event before the triggers", hub(true, t0.Add(time.Hour), all), "API.CREATED", t0.Add(time.Minute), nil, []skip{{"url_all", routing.ArrivedBeforeTriggers}}},
		{"no URL", hub(true, t0), "API.CREATED", t0.Add(time.Minute), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to, skipped := routing.Route(tt.cfg, tt.typ, tt.arrived)
			var gotTo []string
			for _, u := range to {
				gotTo = append(gotTo, u.GetId())
			}
			if len(gotTo) != len(tt.wantTo) {
				t.Fatalf("to = %v, want %v", gotTo, tt.wantTo)
			}
			for i := range gotTo {
				if gotTo[i] != tt.wantTo[i] {
					t.Fatalf("to = %v, want %v", gotTo, tt.wantTo)
				}
			}
			if len(skipped) != len(tt.wantOut) {
				t.Fatalf("skipped = %v, want %v", skipped, tt.wantOut)
			}
			for i, s := range skipped {
				if s.URL.GetId() != tt.wantOut[i].id || s.Reason != tt.wantOut[i].reason || s.Detail == "" {
					t.Errorf("skipped[%d] = %s %s %q, want %v", i, s.URL.GetId(), s.Reason, s.Detail, tt.wantOut[i])
				}
			}
		})
	}
}

func TestFiltered(t *testing.T) {
	plain := &hubhooksv1.HubConfig{CallbackUrls: []*hubhooksv1.CallbackUrl{{Id: "a"}, {Id: "b"}}}
	if routing.Filtered(plain) {
		t.Error("URLs without filters or disabling: Filtered = true")
	}
	for _, u := range []*hubhooksv1.CallbackUrl{{Id: "c", Disabled: true}, {Id: "d", EventTypes: []string{"API.CREATED"}}} {
		cfg := &hubhooksv1.HubConfig{CallbackUrls: append(plain.GetCallbackUrls(), u)}
		if !routing.Filtered(cfg) {
			t.Errorf("%v: Filtered = false", u)
		}
	}
}

func TestOperationalEventsGoToTheirURLOnly(t *testing.T) {
	ops := &hubhooksv1.CallbackUrl{Id: "ops", EventTypes: []string{"API.CREATED"}, OperationalEvents: true}
	plain := &hubhooksv1.CallbackUrl{Id: "plain"}
	if !routing.Accepts(ops, "OPERATIONAL.URL_DISABLED") || routing.Accepts(plain, "OPERATIONAL.URL_DISABLED") {
		t.Error("operational events: want the marked URL only, whatever its filter")
	}
	if !routing.Accepts(ops, "API.CREATED") || routing.Accepts(ops, "API.UPDATED") || !routing.Accepts(plain, "API.UPDATED") {
		t.Error("the marked URL's filter still applies to other types")
	}
	ops.Disabled = true
	if routing.Accepts(ops, "OPERATIONAL.URL_DISABLED") {
		t.Error("a disabled URL takes operational events")
	}
}
