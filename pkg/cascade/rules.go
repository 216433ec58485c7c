package cascade

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

//go:embed rules.json
var defaultRules []byte

// Sentinel errors; match them with errors.Is.
var (
	// ErrInvalidRules is wrapped by every error of Load.
	ErrInvalidRules = errors.New("invalid cascade rules")
	// ErrUnknownSubject is returned by Expand for a subject no rule handles.
	ErrUnknownSubject = errors.New("unknown domain subject")
	// ErrPayload is returned by Expand when a payload cannot be encoded as
	// JSON or a forEach list is longer than MaxForEach.
	ErrPayload = errors.New("invalid event payload")
)

// FormatVersion is the only rules file format version Load accepts.
const FormatVersion = 1

// MaxForEach is the longest forEach list Expand accepts; a longer list is an
// ErrPayload, so one domain event cannot flood every callback URL.
const MaxForEach = 1000

// Rule is one row of the cascade table.
type Rule struct {
	// Subject is the domain subject, ENTITY.ACTION, e.g. API.CREATED.
	Subject string `json:"subject"`
	// Name is the seed's human name, e.g. "API Created".
	Name string `json:"name"`
	// Emits lists the webhook events the rule emits, in order.
	Emits []Emit `json:"emits"`
}

// Emit is one webhook event a rule emits.
type Emit struct {
	// Type is the webhook event type, ENTITY.ACTION.
	Type string `json:"type"`
	// From is the field of the domain event's data that is the payload. Load
	// fills it from the payloadFields table when the file leaves it empty
	// (except with ForEach). When data has no such field, the whole data is
	// the payload.
	From string `json:"from,omitempty"`
	// ForEach names a list field of data: one event per element, the element
	// being the payload; none when the field is absent, empty or not a list.
	ForEach string `json:"forEach,omitempty"`
}

// Rules is a validated, immutable rule set, safe for concurrent use.
type Rules struct {
	rules     []Rule
	bySubject map[string]int
	fields    map[string]string
	streams   []string
	types     []string
}

type file struct {
	Version       int               `json:"version"`
	PayloadFields map[string]string `json:"payloadFields"`
	Rules         []Rule            `json:"rules"`
}

var (
	subjectRE = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*\.[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)
	entityRE  = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)
	fieldRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
)

// Default returns the built-in rules (rules.json, listed in docs/cascade.md).
// It panics only if the embedded rules.json is broken, which the package's
// tests rule out.
func Default() *Rules {
	r, err := Load(bytes.NewReader(defaultRules))
	if err != nil {
		panic("cascade: embedded rules.json: " + err.Error())
	}
	return r
}

// DefaultJSON returns a copy of the embedded rules file, a template for
// alternative rule files.
func DefaultJSON() []byte { return slices.Clone(defaultRules) }

// Load reads and validates a rules file (the format of the embedded
// rules.json). Every problem found is reported, joined, wrapping
// ErrInvalidRules.
func Load(r io.Reader) (*Rules, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: decode: %w", ErrInvalidRules, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the rules object", ErrInvalidRules)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidRules}, args...)...))
	}
	if f.Version != FormatVersion {
		bad("version %d, want %d", f.Version, FormatVersion)
	}
	if len(f.Rules) == 0 {
		bad("no rules")
	}
	for entity, field := range f.PayloadFields {
		if !entityRE.MatchString(entity) {
			bad("payloadFields: entity %q is not UPPER_SNAKE_CASE", entity)
		}
		if !fieldRE.MatchString(field) {
			bad("payloadFields: %s: field %q is not a field name", entity, field)
		}
	}
	rs := &Rules{
		rules:     make([]Rule, 0, len(f.Rules)),
		bySubject: make(map[string]int, len(f.Rules)),
		fields:    f.PayloadFields,
	}
	streams := map[string]bool{}
	types := map[string]bool{}
	for i, rule := range f.Rules {
		where := fmt.Sprintf("rule %d (%s)", i+1, rule.Subject)
		if !subjectRE.MatchString(rule.Subject) {
			bad("%s: subject must be ENTITY.ACTION in UPPER_SNAKE_CASE", where)
		} else if _, dup := rs.bySubject[rule.Subject]; dup {
			bad("%s: duplicate subject", where)
		}
		if strings.TrimSpace(rule.Name) == "" {
			bad("%s: name is required", where)
		}
		out := Rule{Subject: rule.Subject, Name: rule.Name, Emits: make([]Emit, 0, len(rule.Emits))}
		for j, e := range rule.Emits {
			ew := fmt.Sprintf("%s emit %d (%s)", where, j+1, e.Type)
			if !subjectRE.MatchString(e.Type) {
				bad("%s: type must be ENTITY.ACTION in UPPER_SNAKE_CASE", ew)
				continue
			}
			entity, _, _ := strings.Cut(e.Type, ".")
			switch {
			case e.ForEach != "":
				if !fieldRE.MatchString(e.ForEach) {
					bad("%s: forEach %q is not a field name", ew, e.ForEach)
				}
				if e.From != "" {
					bad("%s: from and forEach are exclusive (forEach's payload is the element)", ew)
				}
			case e.From != "":
				if !fieldRE.MatchString(e.From) {
					bad("%s: from %q is not a field name", ew, e.From)
				}
			default:
				field, ok := f.PayloadFields[entity]
				if !ok {
					bad("%s: unknown entity %s: add it to payloadFields or set from", ew, entity)
				}
				e.From = field
			}
			out.Emits = append(out.Emits, e)
			types[e.Type] = true
		}
		if subjectRE.MatchString(rule.Subject) {
			entity, _, _ := strings.Cut(rule.Subject, ".")
			streams[entity+".*"] = true
		}
		rs.bySubject[rule.Subject] = len(rs.rules)
		rs.rules = append(rs.rules, out)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for s := range streams {
		rs.streams = append(rs.streams, s)
	}
	sort.Strings(rs.streams)
	for t := range types {
		rs.types = append(rs.types, t)
	}
	sort.Strings(rs.types)
	return rs, nil
}

// Lookup returns a copy of the rule for a domain subject.
func (rs *Rules) Lookup(subject string) (*Rule, bool) {
	i, ok := rs.bySubject[subject]
	if !ok {
		return nil, false
	}
	r := rs.rules[i]
	r.Emits = slices.Clone(r.Emits)
	return &r, true
}

// Has reports whether a rule handles subject.
func (rs *Rules) Has(subject string) bool {
	_, ok := rs.bySubject[subject]
	return ok
}

// All returns a copy of every rule, in file order.
func (rs *Rules) All() []Rule {
	out := make([]Rule, len(rs.rules))
	for i, r := range rs.rules {
		r.Emits = slices.Clone(r.Emits)
		out[i] = r
	}
	return out
}

// Subjects returns every domain subject, in rule order.
func (rs *Rules) Subjects() []string {
	out := make([]string, len(rs.rules))
	for i, r := range rs.rules {
		out[i] = r.Subject
	}
	return out
}

// StreamSubjects returns the JetStream subject filters that cover every
// domain subject, one per entity ("API.*", "BILLINGPLAN.*", ...), sorted.
func (rs *Rules) StreamSubjects() []string { return slices.Clone(rs.streams) }

// WebhookEventTypes returns every webhook event type a rule can emit, sorted
// and unique.
func (rs *Rules) WebhookEventTypes() []string { return slices.Clone(rs.types) }

// PayloadField returns the payload field of a webhook event entity (e.g.
// "BILLINGPLAN" -> "billingPlan").
func (rs *Rules) PayloadField(entity string) (string, bool) {
	f, ok := rs.fields[entity]
	return f, ok
}

// EventTypes returns the rules as the ListEventTypes response: every rule in
// order, and the sorted unique webhook event types. Each call returns a new
// message the caller may modify.
func (rs *Rules) EventTypes() *hubhooksv1.ListEventTypesResponse {
	resp := &hubhooksv1.ListEventTypesResponse{
		Rules:             make([]*hubhooksv1.EventTypeRule, 0, len(rs.rules)),
		WebhookEventTypes: rs.WebhookEventTypes(),
	}
	for _, r := range rs.rules {
		pr := &hubhooksv1.EventTypeRule{DomainSubject: r.Subject, Name: r.Name}
		for _, e := range r.Emits {
			pr.Emits = append(pr.Emits, &hubhooksv1.EmittedEvent{Type: e.Type, From: e.From, ForEach: e.ForEach})
		}
		resp.Rules = append(resp.Rules, pr)
	}
	return resp
}
