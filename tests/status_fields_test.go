package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// statusKeys walks a status document and returns every object key that is not snake_case lower, by path.
// The keys of "meta" maps (the user's) and of "peers" (peers block names) are data, not field names.
func statusKeys(v any, path string, bad *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if !strings.HasSuffix(path, ".meta") && path != ".peers" && !snakeKey.MatchString(k) {
				*bad = append(*bad, path+"."+k)
			}
			statusKeys(e, path+"."+k, bad)
		}
	case []any:
		for i, e := range v {
			statusKeys(e, path+"["+strconv.Itoa(i)+"]", bad)
		}
	}
}

// keysAt returns the keys of the first object of the array at doc[field] (sorted), or nil.
func keysAt(doc map[string]any, field string) []string {
	arr, _ := doc[field].([]any)
	if len(arr) == 0 {
		return nil
	}
	obj, _ := arr[0].(map[string]any)
	var keys []string
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestCtlStatusFieldNames: every field of `berth ctl status` — processes, locks, checks, registrations,
// secrets, peers — is snake_case lower, with the names docs/cli.md documents (its table is checked by cmd/berth TestDocsStatusFields).
func TestCtlStatusFieldNames(t *testing.T) {
	app := harness.TestApp(t)
	c := harness.StartConsul(t)
	a := secStartAWS(t)
	a.Secret(t, "status/db", `{"username":"status-user"}`)
	port := harness.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "berth.hcl", consulBlock(c.Addr)+fmt.Sprintf(`
main { command = %s }

job "scheduler" {
  type      = "service"
  singleton = true
  lock_key  = "berth/status-fields/scheduler"
  command   = %s
}

service "web" {
  port    = %d
  address = "127.0.0.1"
  meta    = { Team_Name = "infra" }
  check {
    tcp      = %q
    interval = "1s"
  }
}

peers "web" {
  service = "web"
  env     = "WEB_PEERS"
}

secret "db" {
  secretsmanager = "status/db"
  env            = { DB_USER = "username" }
}
`, hclList(app, "-http", addr), hclList(app, "-sleep", "1h"), port, addr))
	// Another instance of "web" (berth's peers leave out its own registration).
	req, _ := http.NewRequest(http.MethodPut, "http://"+c.Addr+"/v1/agent/service/register",
		strings.NewReader(`{"ID":"web-other","Name":"web","Address":"127.0.0.1","Port":1,"Meta":{"Team_Name":"infra"}}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("registering another web instance: %v %v", err, resp)
	}
	resp.Body.Close()
	sock := sockPath(t)
	b := harness.RunBerth(t, harness.BerthOpts{Env: a.env(""), Args: []string{"run", "-control-socket", sock, "-config", cfg}})
	waitSocket(t, b, sock)

	var doc map[string]any
	var out string
	harness.Eventually(t, 30*time.Second, "check passing, lock held, peer seen", func() bool {
		var code int
		code, out, _ = ctl(t, sock, "status")
		doc = nil
		if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
			return false
		}
		lo := strings.ToLower(out) // the conditions, whatever the field names; they are checked below
		return strings.Contains(lo, `"status": "passing"`) && strings.Contains(lo, `"lock": "holder"`) &&
			strings.Contains(lo, `"state": "registered"`) && strings.Contains(lo, `"node"`)
	})

	var bad []string
	statusKeys(doc, "", &bad)
	if len(bad) > 0 {
		t.Errorf("fields that are not snake_case lower: %v\n%s", bad, out)
	}
	want := map[string][]string{
		"processes":     {"lock", "name", "pid", "restarts", "started_at", "state", "type"},
		"checks":        {"check_id", "name", "output", "service", "status", "updated"},
		"registrations": {"address", "id", "maintenance", "meta", "name", "port", "registered", "state", "tags"},
		"secrets":       {"block", "fetched", "ref", "version"},
	}
	for field, keys := range want {
		have := keysAt(doc, field)
		if field == "processes" {
			// main holds no lock; the singleton does
			have = nil
			for _, p := range doc["processes"].([]any) {
				if p := p.(map[string]any); p["lock"] != nil {
					for k := range p {
						have = append(have, k)
					}
				}
			}
			slices.Sort(have)
		}
		if !slices.Equal(have, keys) {
			t.Errorf("%s fields: want %v, have %v", field, keys, have)
		}
	}
	peers, _ := doc["peers"].(map[string]any)
	web, _ := peers["web"].([]any)
	if len(web) == 0 {
		t.Fatalf("no peers in status:\n%s", out)
	}
	var have []string
	for k := range web[0].(map[string]any) {
		have = append(have, k)
	}
	slices.Sort(have)
	if want := []string{"address", "id", "meta", "name", "node", "port", "tags"}; !slices.Equal(have, want) {
		t.Errorf("peer fields: want %v, have %v", want, have)
	}
	// a service and a peer without tags: an empty list, not null (a jq '.tags[]' or a length check works)
	if regs, _ := doc["registrations"].([]any); len(regs) == 0 {
		t.Errorf("no registrations in status:\n%s", out)
	} else if tags, ok := regs[0].(map[string]any)["tags"].([]any); !ok || len(tags) != 0 {
		t.Errorf(`registration of "web" (no tags): want "tags": [], have %#v`, regs[0].(map[string]any)["tags"])
	}
	if tags, ok := web[0].(map[string]any)["tags"].([]any); !ok || len(tags) != 0 {
		t.Errorf(`peer "web-other" (no tags): want "tags": [], have %#v`, web[0].(map[string]any)["tags"])
	}
	for _, k := range []string{"version", "pid", "uptime", "orphans_reaped"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("status lacks %q:\n%s", k, out)
		}
	}
}
