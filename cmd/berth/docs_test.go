package main

// The user reference in docs/ is checked against the code here, so that a flag, config key, status field or
// metric added without its documentation fails the build, and so does an example that no longer validates or a
// link that leads nowhere.

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/supervisor"
)

// repoRoot is where docs/ and README.md are, seen from this package.
const repoRoot = "../.."

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tableRows are the lines of md that are table rows (not the separator), trimmed.
func tableRows(md string) []string {
	var rows []string
	for _, l := range strings.Split(md, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "|") && !strings.HasPrefix(l, "| ---") {
			rows = append(rows, l)
		}
	}
	return rows
}

// firstCell is the first cell of a table row.
func firstCell(row string) string {
	cells := strings.Split(strings.Trim(row, "|"), " | ")
	return strings.TrimSpace(cells[0])
}

// TestDocsRunFlags: every flag of `berth run` has a row in docs/cli.md whose first cell is the flag and
// which names its BERTH_ variable and, when it has one, its default as the flag package prints it.
func TestDocsRunFlags(t *testing.T) {
	rows := tableRows(readDoc(t, "docs/cli.md"))
	n := 0
	newRunFlagSet(&runFlags{}, &bytes.Buffer{}).VisitAll(func(fl *flag.Flag) {
		n++
		flagRe := regexp.MustCompile("^`-" + regexp.QuoteMeta(fl.Name) + "[ `]")
		var row string
		for _, r := range rows {
			if flagRe.MatchString(firstCell(r)) {
				row = r
				break
			}
		}
		switch {
		case row == "":
			t.Errorf("docs/cli.md has no table row for -%s (first cell \"`-%s ...`\")", fl.Name, fl.Name)
		case !strings.Contains(row, "`"+envName(fl.Name)+"`"):
			t.Errorf("docs/cli.md: the row of -%s does not name `%s`:\n%s", fl.Name, envName(fl.Name), row)
		case fl.DefValue != "" && !strings.Contains(row, "`"+fl.DefValue+"`"):
			t.Errorf("docs/cli.md: the row of -%s does not give its default `%s`:\n%s", fl.Name, fl.DefValue, row)
		}
	})
	if n < 20 {
		t.Fatalf("only %d run flags visited", n)
	}
}

// helpOf runs `berth ARGS... -h` in process and returns what it printed.
func helpOf(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Main(append(args, "-h"), Stdio{Out: &out, Err: &errb}, envOf(nil), func() []string { return nil }); code != 0 {
		t.Fatalf("berth %v -h: exit %d\n%s", args, code, errb.String())
	}
	return out.String()
}

// TestDocsSubcommands: every subcommand of `berth -h` has a "## `berth NAME`" section in docs/cli.md, every
// `berth ctl` command a row, and every flag any help text mentions appears in docs/cli.md.
func TestDocsSubcommands(t *testing.T) {
	cli := readDoc(t, "docs/cli.md")
	top := helpOf(t)
	subs := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  berth (\[?[a-z]+)`).FindAllStringSubmatch(top, -1) {
		subs[strings.TrimPrefix(m[1], "[")] = true
	}
	if len(subs) < 6 {
		t.Fatalf("berth -h lists only %v", subs)
	}
	for s := range subs {
		if !strings.Contains(cli, "\n## `berth "+s+"`\n") {
			t.Errorf("docs/cli.md has no section \"## `berth %s`\"", s)
		}
	}

	ctl := helpOf(t, "ctl")
	cmds := regexp.MustCompile(`(?m)^  ([a-z]+)\s`).FindAllStringSubmatch(ctl, -1)
	if len(cmds) < 5 {
		t.Fatalf("berth ctl -h lists only %v", cmds)
	}
	for _, m := range cmds {
		if !strings.Contains(cli, "| `berth ctl "+m[1]) {
			t.Errorf("docs/cli.md has no row for `berth ctl %s`", m[1])
		}
	}

	for _, args := range [][]string{nil, {"run"}, {"validate"}, {"health"}, {"ctl"}, {"secrets", "encrypt"}, {"secrets", "decrypt"}} {
		for _, fl := range helpFlags(helpOf(t, args...)) {
			if !strings.Contains(cli, "`"+fl) {
				t.Errorf("berth %v -h has the flag %s, docs/cli.md does not (as `%s ...`)", args, fl, fl)
			}
		}
	}
}

// helpFlags are the flags a help text shows: every -flag of a usage line ("usage: berth ...", "  berth ..."),
// a -flag that starts a line (the flag package's list) and a [-flag ...]. A -x in the prose of a flag's
// description (as tini -e) is not one of berth's.
func helpFlags(help string) []string {
	anyFlag := regexp.MustCompile(`[\s\[](-[a-z][a-z-]*)`)
	lead := regexp.MustCompile(`^\s+(-[a-z][a-z-]*)`)
	bracket := regexp.MustCompile(`\[(-[a-z][a-z-]*)`)
	var out []string
	for _, l := range strings.Split(help, "\n") {
		ms := bracket.FindAllStringSubmatch(l, -1)
		if strings.HasPrefix(l, "usage:") || strings.HasPrefix(l, "  berth ") {
			ms = anyFlag.FindAllStringSubmatch(l, -1)
		} else if m := lead.FindStringSubmatch(l); m != nil {
			ms = append(ms, m)
		}
		for _, m := range ms {
			out = append(out, m[1])
		}
	}
	return out
}

// jsonPaths lists the JSON field paths of a type as encoding/json names them: processes[].name, peers.NAME[].ID.
func jsonPaths(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		jsonPaths(t.Elem(), prefix+"[]", out)
	case reflect.Map:
		jsonPaths(t.Elem(), prefix+".NAME", out)
	case reflect.Struct:
		if t == reflect.TypeFor[time.Time]() || t.Implements(reflect.TypeFor[json.Marshaler]()) {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := f.Name
			if tag, ok := f.Tag.Lookup("json"); ok {
				n, _, _ := strings.Cut(tag, ",")
				if n == "-" {
					continue
				}
				if n != "" {
					name = n
				}
			}
			if f.Anonymous && f.Type.Kind() == reflect.Struct && name == f.Name {
				jsonPaths(f.Type, prefix, out) // embedded: its fields are promoted
				continue
			}
			p := name
			if prefix != "" {
				p = prefix + "." + name
			}
			*out = append(*out, p)
			jsonPaths(f.Type, p, out)
		}
	}
}

// TestDocsStatusFields: every field of the status document (`berth ctl status`) is in docs/cli.md, by its
// JSON path.
func TestDocsStatusFields(t *testing.T) {
	cli := readDoc(t, "docs/cli.md")
	var paths []string
	jsonPaths(reflect.TypeFor[statusDoc](), "", &paths)
	if len(paths) < 20 {
		t.Fatalf("only %d status fields: %v", len(paths), paths)
	}
	for _, p := range paths {
		if !strings.Contains(cli, "`"+p+"`") {
			t.Errorf("docs/cli.md does not document the status field `%s`", p)
		}
	}
}

// mdSection is a heading of a markdown file and the lines under it, up to the next heading.
type mdSection struct {
	heading string
	body    string
}

func sections(md string) []mdSection {
	var out []mdSection
	cur := mdSection{}
	var body []string
	inFence := false
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "```") {
			inFence = !inFence
		}
		if !inFence && strings.HasPrefix(l, "#") {
			cur.body = strings.Join(body, "\n")
			out = append(out, cur)
			cur, body = mdSection{heading: strings.TrimSpace(strings.TrimLeft(l, "#"))}, nil
			continue
		}
		body = append(body, l)
	}
	cur.body = strings.Join(body, "\n")
	return append(out, cur)
}

// sectionBlocks are the config blocks a section of docs/config.md documents: the words in backticks in its
// heading before any parenthesis ("## `main` and `job`" → main, job; "### `check` (in `service`)" → check;
// "## `secret \"NAME\"`" → secret), or "" for the top-level keys.
func sectionBlocks(heading string) []string {
	if strings.HasPrefix(heading, "Top-level keys") {
		return []string{""}
	}
	head, _, _ := strings.Cut(heading, "(")
	var out []string
	for _, m := range regexp.MustCompile("`([a-z0-9_]+)[` ]").FindAllStringSubmatch(head, -1) {
		out = append(out, m[1])
	}
	return out
}

// keyOfRow is the key a table row documents: its first cell, when that is a key in backticks.
func keyOfRow(row string) (string, bool) {
	m := regexp.MustCompile("^`([a-z0-9_]+)`$").FindStringSubmatch(firstCell(row))
	if m == nil {
		return "", false
	}
	return m[1], true
}

// TestDocsConfigKeys: every key the config decoder accepts (config.Keys) has a row in a section of
// docs/config.md that documents its block, and every key row of such a section is a key of that block, so
// a renamed or removed key does not linger in the docs either.
func TestDocsConfigKeys(t *testing.T) {
	secs := sections(readDoc(t, "docs/config.md"))
	documented := map[string]map[string]bool{} // block ("" top level) -> keys in its sections
	for _, s := range secs {
		for _, b := range sectionBlocks(s.heading) {
			if documented[b] == nil {
				documented[b] = map[string]bool{}
			}
			for _, r := range tableRows(s.body) {
				if k, ok := keyOfRow(r); ok {
					documented[b][k] = true
				}
			}
		}
	}
	keys := config.Keys()
	if len(keys) < 100 {
		t.Fatalf("config.Keys has only %d keys", len(keys))
	}
	accepted := map[string]map[string]bool{}
	for _, k := range keys {
		parts := strings.Split(k, ".")
		leaf, block := parts[len(parts)-1], ""
		if len(parts) > 1 {
			block = parts[len(parts)-2]
		}
		if accepted[block] == nil {
			accepted[block] = map[string]bool{}
		}
		accepted[block][leaf] = true
		if !documented[block][leaf] {
			where := "in \"## Top-level keys\""
			if block != "" {
				where = "under a heading naming `" + block + "`"
			}
			t.Errorf("docs/config.md does not document %s (a table row \"| `%s` |\" %s)", k, leaf, where)
		}
	}
	for block, ks := range documented {
		if len(ks) == 0 {
			continue // a heading such as "`singleton` and `once`" that documents no keys of its own
		}
		for k := range ks {
			if !accepted[block][k] {
				t.Errorf("docs/config.md documents %q under %q, which the decoder does not accept there", k, block)
			}
		}
	}
}

// docConfigs are the example configs of docs/: every file under docs/examples/, and every ```hcl and ```json
// fenced block of docs/*.md (non-config JSON is fenced as ```text).
func docConfigs(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	files, _ := filepath.Glob(filepath.Join(repoRoot, "docs/examples/*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(f, repoRoot+"/")] = b
	}
	pages, _ := filepath.Glob(filepath.Join(repoRoot, "docs/*.md"))
	fence := regexp.MustCompile("(?ms)^```(hcl|json)\n(.*?)^```")
	for _, p := range pages {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fence.FindAllSubmatchIndex(src, -1) {
			line := bytes.Count(src[:m[0]], []byte("\n")) + 1
			name := strings.TrimPrefix(p, repoRoot+"/") + ":" + strconv.Itoa(line) + "." + string(src[m[2]:m[3]])
			out[name] = src[m[4]:m[5]]
		}
	}
	return out
}

// docsEnv is the environment the examples are validated in: what their env() calls without a default need.
func docsEnv() LookupEnv { return envOf(map[string]string{"IMAGE_TAG": "v1.2.3"}) }

// TestDocsExamplesValidate: every example config of docs/ passes `berth validate`.
func TestDocsExamplesValidate(t *testing.T) {
	cfgs := docConfigs(t)
	fenced := 0
	for name := range cfgs {
		if strings.Contains(name, ".md:") {
			fenced++
		}
	}
	if len(cfgs)-fenced < 3 || fenced < 10 {
		t.Fatalf("found %d example files and %d fenced examples; the docs have more", len(cfgs)-fenced, fenced)
	}
	dir := t.TempDir()
	for name, src := range cfgs {
		path := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(name))
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		if code := Main([]string{"validate", "-config", path}, Stdio{Out: &out, Err: &errb}, docsEnv(), func() []string { return nil }); code != 0 {
			t.Errorf("berth validate: the example at %s: exit %d\n%s\n%s", name, code, errb.String(), src)
		}
	}
}

// TestDocsJSONExampleIsTheHCLOne: docs/examples/full.json says what full.hcl says.
func TestDocsJSONExampleIsTheHCLOne(t *testing.T) {
	load := func(name string) *config.File {
		f, err := loadConfigFile(filepath.Join(repoRoot, "docs/examples", name), docsEnv())
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	h, j := load("full.hcl"), load("full.json")
	ignore := cmpopts.IgnoreFields(config.File{}, "Filename", "Positions")
	if d := cmp.Diff(h, j, ignore, cmpopts.IgnoreUnexported(supervisor.Spec{}), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("docs/examples/full.json differs from full.hcl (-hcl +json):\n%s", d)
	}
}

// TestDocsMetrics: every metric the telemetry package defines (its exported Metric* string constants) is in
// docs/telemetry.md.
func TestDocsMetrics(t *testing.T) {
	doc := readDoc(t, "docs/telemetry.md")
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, filepath.Join(repoRoot, "telemetry"), func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var metrics []string
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if !strings.HasPrefix(n.Name, "Metric") || i >= len(vs.Values) {
							continue
						}
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							v, _ := strconv.Unquote(lit.Value)
							metrics = append(metrics, v)
						}
					}
				}
			}
		}
	}
	if len(metrics) < 10 {
		t.Fatalf("found only %d metrics in telemetry: %v", len(metrics), metrics)
	}
	for _, m := range metrics {
		if !strings.Contains(doc, "| `"+m+"` |") {
			t.Errorf("docs/telemetry.md has no row for the metric %s", m)
		}
	}
}

// slug is GitHub's anchor for a heading: lower case, punctuation other than '-' and '_' dropped, spaces as '-'.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

func anchors(md string) map[string]bool {
	out := map[string]bool{}
	for _, s := range sections(md) {
		if s.heading == "" {
			continue
		}
		a := slug(s.heading)
		for i := 1; out[a]; i++ { // GitHub numbers repeated headings
			a = slug(s.heading) + "-" + strconv.Itoa(i)
		}
		out[a] = true
	}
	return out
}

// TestDocsLinks: every relative link of docs/*.md, README.md and ARCHITECTURE.md leads to a file of the
// repository, and every #anchor to a heading of its page.
func TestDocsLinks(t *testing.T) {
	pages, _ := filepath.Glob(filepath.Join(repoRoot, "docs/*.md"))
	pages = append(pages, filepath.Join(repoRoot, "README.md"), filepath.Join(repoRoot, "ARCHITECTURE.md"))
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	checked := 0
	for _, p := range pages {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(src), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			file, anchor, _ := strings.Cut(target, "#")
			dest := p
			if file != "" {
				dest = filepath.Join(filepath.Dir(p), file)
			}
			name := strings.TrimPrefix(p, repoRoot+"/")
			if _, err := os.Stat(dest); err != nil {
				t.Errorf("%s: link %s: %v", name, target, err)
				continue
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(dest, ".md") {
				t.Errorf("%s: link %s: an anchor into a file that is not markdown", name, target)
				continue
			}
			md, err := os.ReadFile(dest)
			if err != nil {
				t.Fatal(err)
			}
			if !anchors(string(md))[anchor] {
				t.Errorf("%s: link %s: no heading with that anchor in %s", name, target, filepath.Base(dest))
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d relative links checked", checked)
	}
}

// TestDocsTestsCanFail: the checks above find what is missing, on a page that lacks it.
func TestDocsTestsCanFail(t *testing.T) {
	if k, ok := keyOfRow("| `log_level` | string | `info` | ... |"); !ok || k != "log_level" {
		t.Errorf("keyOfRow: %q %v", k, ok)
	}
	if got := sectionBlocks("`pre_start`, `pre_stop`, `post_stop` hooks (in `main` and `job`)"); !slices.Equal(got, []string{"pre_start", "pre_stop", "post_stop"}) {
		t.Errorf("sectionBlocks: %v", got)
	}
	if got := sectionBlocks("`secret \"NAME\"`"); !slices.Equal(got, []string{"secret"}) {
		t.Errorf("sectionBlocks: %v", got)
	}
	if got := slug("`pre_start`, `pre_stop`, `post_stop` hooks (in `main` and `job`)"); got != "pre_start-pre_stop-post_stop-hooks-in-main-and-job" {
		t.Errorf("slug: %q", got)
	}
	if got := helpFlags("usage: berth x -config FILE [-json]\n  -peers-min int\n    \tFROM:TO, as tini -e\n  berth y -key K\n"); !slices.Equal(got, []string{"-config", "-json", "-peers-min", "-key"}) {
		t.Errorf("helpFlags: %v", got)
	}
	if a := anchors("# A\n```\n# not a heading\n```\n## A\n"); !a["a"] || !a["a-1"] || a["not-a-heading"] {
		t.Errorf("anchors: %v", a)
	}
}
