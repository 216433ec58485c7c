package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/hubhooks/hubhooks/pkg/cascade"
)

// TestGeneratedFileIsCurrent fails when constructors_gen.go is stale: run
// go generate ./publisher after changing pkg/cascade/rules.json.
func TestGeneratedFileIsCurrent(t *testing.T) {
	want, err := Generate(cascade.Default())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../constructors_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("constructors_gen.go is stale: run go generate in pkg/publisher")
	}
}

func TestGoName(t *testing.T) {
	tests := map[string]string{
		"BILLINGPLAN.CREATED":        "BillingPlanCreated",
		"API_VERSION.DELETED":        "APIVersionDeleted",
		"BASE_URL.UPDATED":           "BaseURLUpdated",
		"DISCUSSION_COMMENT.CREATED": "DiscussionCommentCreated",
		"APP_KEY.CREATED":            "AppKeyCreated",
	}
	for in, want := range tests {
		if got := GoName(in); got != want {
			t.Errorf("GoName(%s) = %s, want %s", in, got, want)
		}
	}
}
