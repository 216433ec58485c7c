package cascade_test

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hubhooks/hubhooks/pkg/cascade"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/cascade.md's generated tables from the built-in rules")

const (
	docsPath   = "../../docs/cascade.md"
	beginTable = "<!-- BEGIN GENERATED: go test ./pkg/cascade -run TestCascadeDocIsCurrent -update-docs -->\n"
	endTable   = "<!-- END GENERATED -->\n"
)

// TestCascadeDocIsCurrent keeps the tables of docs/cascade.md equal to the
// built-in rules, so the page people read is the rule set the expander runs.
func TestCascadeDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := strings.Cut(string(doc), beginTable)
	if !ok {
		t.Fatalf("%s: marker %q missing", docsPath, beginTable)
	}
	_, after, ok := strings.Cut(rest, endTable)
	if !ok {
		t.Fatalf("%s: marker %q missing", docsPath, endTable)
	}
	want := before + beginTable + renderRules(cascade.Default()) + endTable + after
	if want == string(doc) {
		return
	}
	if *updateDocs {
		if err := os.WriteFile(docsPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s is stale: run go test ./pkg/cascade -run TestCascadeDocIsCurrent -update-docs", docsPath)
}

// renderRules writes the rule table and the payload-field table as Markdown.
func renderRules(rs *cascade.Rules) string {
	var b strings.Builder
	b.WriteString("| # | domain event | subject | webhook events emitted, in order |\n|---|---|---|---|\n")
	for i, r := range rs.All() {
		var emits []string
		for _, e := range r.Emits {
			s := "`" + e.Type + "`"
			if e.ForEach != "" {
				s += " once per element of `data." + e.ForEach + "`"
			}
			emits = append(emits, s)
		}
		list := strings.Join(emits, ", ")
		if list == "" {
			list = "(none)"
		}
		fmt.Fprintf(&b, "| %d | %s | `%s` | %s |\n", i+1, r.Name, r.Subject, list)
	}
	b.WriteString("\n| webhook entity | payload field of `data` |\n|---|---|\n")
	var entities []string
	for _, typ := range rs.WebhookEventTypes() {
		entity, _, _ := strings.Cut(typ, ".")
		if !slices.Contains(entities, entity) {
			entities = append(entities, entity)
		}
	}
	slices.Sort(entities)
	for _, entity := range entities {
		if field, ok := rs.PayloadField(entity); ok {
			fmt.Fprintf(&b, "| `%s` | `%s` |\n", entity, field)
		}
	}
	return b.String()
}
