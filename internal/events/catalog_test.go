package events

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/conditions.md from ReasonCatalog")

const conditionsDoc = "../../docs/conditions.md"

// Every Reason constant is documented, and docs/conditions.md is the
// rendering of the catalog: neither can drift from the code.
func TestReasonCatalogCoversEveryReason(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "conditions.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, d := range ReasonCatalog {
		documented[d.Reason] = true
	}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					continue
				}
				if v := strings.Trim(lit.Value, `"`); !documented[v] {
					t.Errorf("%s (%q) is not in ReasonCatalog: document it", name.Name, v)
				}
			}
		}
	}
}

func TestConditionsDocIsCurrent(t *testing.T) {
	want := RenderReasonCatalog()
	if *updateDocs {
		if err := os.WriteFile(conditionsDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(conditionsDoc)
	if err != nil || string(got) != want {
		t.Fatalf("docs/conditions.md is stale (err %v): run `go test ./internal/events -run ConditionsDoc -update-docs`", err)
	}
}

func TestRenderReasonCatalogOrder(t *testing.T) {
	last := -1
	for _, d := range ReasonCatalog {
		i := -1
		for k, c := range ConditionOrder {
			if c == d.Condition {
				i = k
			}
		}
		if i < last {
			t.Errorf("%s/%s is out of ConditionOrder", d.Condition, d.Reason)
		}
		last = i
	}
	if s := RenderReasonCatalog(); !strings.Contains(s, fmt.Sprintf("| %s | %s |", ReasonMergeFailed, StatusFalse)) {
		t.Errorf("rendering lacks MergeFailed:\n%s", s)
	}
}
