package config

import (
	"sort"

	"github.com/hashicorp/hcl/v2"
)

// Keys lists every key the decoder accepts, as dotted paths from the top of the file: "log_level",
// "main.pre_start.command", "job.type", "service.check.http", "consul.login.method". Block labels are left
// out (job "migrate" is "job"). The list is sorted and has no duplicates.
//
// It is read off the schemas the decoder itself applies: Keys decodes a stand-in body that holds one of every
// block the schemas name, recursively, and records each attribute a schema asks for. A key added to the
// decoder is therefore in Keys without further work (the docs test of cmd/berth checks docs/config.md
// against it).
func Keys() []string {
	seen := map[string]bool{}
	d := &decoder{ctx: evalContext(Funcs{}), pos: &posMap{}, filename: "keys"}
	d.file(schemaProbe{seen: seen})
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// schemaProbe is an hcl.Body with no attributes and one empty block of every type a schema names. It records
// the attributes each schema applied to it accepts, under its path.
type schemaProbe struct {
	path string
	seen map[string]bool
}

func (p schemaProbe) join(name string) string {
	if p.path == "" {
		return name
	}
	return p.path + "." + name
}

func (p schemaProbe) Content(s *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	c, _, diags := p.PartialContent(s)
	return c, diags
}

func (p schemaProbe) PartialContent(s *hcl.BodySchema) (*hcl.BodyContent, hcl.Body, hcl.Diagnostics) {
	c := &hcl.BodyContent{Attributes: hcl.Attributes{}}
	for _, a := range s.Attributes {
		p.seen[p.join(a.Name)] = true
	}
	for _, b := range s.Blocks {
		labels := make([]string, len(b.LabelNames))
		for i := range labels {
			labels[i] = "probe"
		}
		c.Blocks = append(c.Blocks, &hcl.Block{Type: b.Type, Labels: labels, LabelRanges: make([]hcl.Range, len(labels)),
			Body: schemaProbe{path: p.join(b.Type), seen: p.seen}})
	}
	return c, schemaProbe{path: p.path, seen: map[string]bool{}}, nil
}

func (p schemaProbe) JustAttributes() (hcl.Attributes, hcl.Diagnostics) { return hcl.Attributes{}, nil }

func (p schemaProbe) MissingItemRange() hcl.Range { return hcl.Range{} }
