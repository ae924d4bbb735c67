package tests

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/berth-dev/berth/tests/harness"
)

// TestConsulLoginAWSIAM: consul { login {} } against a real Consul with ACLs on (default_policy "deny") and
// an aws-iam auth method whose STS endpoint is moto. berth signs GetCallerIdentity with the task's
// credentials (consul-awsauth), logs in, registers in the catalog with the token, and logs out at the end of
// shutdown; a login the auth method refuses ends a required berth with 77.
func TestConsulLoginAWSIAM(t *testing.T) {
	moto := harness.StartMoto(t)
	c := harness.StartConsulACL(t, "root")
	root, err := api.NewClient(&api.Config{Address: c.Addr, Token: "root"})
	if err != nil {
		t.Fatal(err)
	}
	pol, _, err := root.ACL().PolicyCreate(&api.ACLPolicy{Name: "berth-catalog", Rules: `node_prefix "" { policy = "write" }
service_prefix "" { policy = "write" }
session_prefix "" { policy = "write" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// moto answers GetCallerIdentity for any key with the user arn:aws:iam::123456789012:user/moto.
	for method, bound := range map[string]string{"aws-ok": "arn:aws:iam::123456789012:user/moto", "aws-other": "arn:aws:iam::123456789012:user/someone-else"} {
		if _, _, err := root.ACL().AuthMethodCreate(&api.ACLAuthMethod{Name: method, Type: "aws-iam", Config: map[string]any{
			"BoundIAMPrincipalARNs": []string{bound}, "STSEndpoint": moto.URL}}, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := root.ACL().BindingRuleCreate(&api.ACLBindingRule{AuthMethod: method, BindType: "policy", BindName: pol.Name}, nil); err != nil {
			t.Fatal(err)
		}
	}
	app := harness.TestApp(t)
	start := func(t *testing.T, method, name string, addr ...string) *harness.BerthRun {
		consulAddr := c.Addr
		if len(addr) > 0 {
			consulAddr = addr[0]
		}
		dir := t.TempDir()
		cfg := filepath.Join(dir, "berth.hcl")
		hcl := fmt.Sprintf(`consul {
  address  = %q
  mode     = "catalog"
  node     = "task-%s"
  required = true
  timeout  = "10s"
  login {
    method       = %q
    meta         = { task = "task-%s" }
    sts_endpoint = %q
  }
}
service %q { port = 8080 }
`, consulAddr, name, method, name, moto.URL, name)
		if err := os.WriteFile(cfg, []byte(hcl), 0o644); err != nil {
			t.Fatal(err)
		}
		return harness.RunBerth(t, harness.BerthOpts{Env: moto.Env(),
			Args: []string{"-config", cfg, "-control-socket", filepath.Join(dir, "s.sock"), "--", app, "-exit-on", "TERM:0"}})
	}
	tokens := func(method string) []*api.ACLTokenListEntry {
		l, _, err := root.ACL().TokenListFiltered(api.ACLTokenFilterOptions{AuthMethod: method}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	t.Run("login use logout", func(t *testing.T) {
		name := uniqueName(t, "login")
		b := start(t, "aws-ok", name)
		harness.Eventually(t, 15*time.Second, "registered with the login token", func() bool {
			es, _, err := root.Health().Service(name, "", true, nil)
			return err == nil && len(es) == 1
		})
		tl := tokens("aws-ok")
		if len(tl) != 1 || !strings.Contains(tl[0].Description, "task-"+name) {
			t.Fatalf("login tokens %+v: want one with the meta in its description", tl)
		}
		b.Signal(syscall.SIGTERM)
		if code := b.Wait(20 * time.Second); code != 0 {
			t.Fatalf("exit %d\n%s", code, b.Stderr.String())
		}
		if tl := tokens("aws-ok"); len(tl) != 0 {
			t.Fatalf("the login token outlived berth: %+v\n%s", tl, b.Stderr.String())
		}
		if es, _, _ := root.Health().Service(name, "", false, nil); len(es) != 0 {
			t.Fatalf("still registered after exit: %+v", es)
		}
		for _, want := range []string{"logged in to consul", "logged out of consul"} {
			if !strings.Contains(b.Stderr.String(), want) {
				t.Fatalf("berth's log lacks %q:\n%s", want, b.Stderr.String())
			}
		}
	})
	t.Run("no cluster leader, then a token that vanished", func(t *testing.T) {
		proxy := harness.StartConsulProxy(t, c.Addr)
		var refused atomic.Int32
		proxy.SetInject(func(r *http.Request) (int, string) {
			if r.URL.Path == "/v1/acl/login" && refused.Load() < 3 {
				refused.Add(1)
				return 500, "No cluster leader"
			}
			return 0, ""
		})
		name := uniqueName(t, "leader")
		b := start(t, "aws-ok", name, proxy.Addr())
		harness.Eventually(t, 15*time.Second, "registered after the leader came back", func() bool {
			es, _, err := root.Health().Service(name, "", true, nil)
			return err == nil && len(es) == 1
		})
		if n := refused.Load(); n != 3 {
			t.Fatalf("%d logins refused, want 3", n)
		}
		// The token disappears (as at the auth method's max_token_ttl): the next request berth makes (the
		// session renewal, within session_ttl/2) gets "ACL not found" and berth logs in again.
		tl := tokens("aws-ok")
		if len(tl) != 1 {
			t.Fatalf("tokens %+v", tl)
		}
		if _, err := root.ACL().TokenDelete(tl[0].AccessorID, nil); err != nil {
			t.Fatal(err)
		}
		harness.Eventually(t, 20*time.Second, "a new login token", func() bool {
			tl := tokens("aws-ok")
			return len(tl) == 1 && strings.Count(b.Stderr.String(), "logged in to consul") == 2
		})
		harness.Eventually(t, 10*time.Second, "still registered", func() bool {
			es, _, err := root.Health().Service(name, "", true, nil)
			return err == nil && len(es) == 1
		})
		b.Signal(syscall.SIGTERM)
		if code := b.Wait(20 * time.Second); code != 0 {
			t.Fatalf("exit %d\n%s", code, b.Stderr.String())
		}
		if tl := tokens("aws-ok"); len(tl) != 0 {
			t.Fatalf("the login token outlived berth: %+v", tl)
		}
	})
	t.Run("denied is 77", func(t *testing.T) {
		b := start(t, "aws-other", uniqueName(t, "denied"))
		if code := b.Wait(20 * time.Second); code != 77 {
			t.Fatalf("exit %d, want 77\n%s", code, b.Stderr.String())
		}
		if len(tokens("aws-other")) != 0 {
			t.Fatal("a token was issued for a denied login")
		}
	})
}
