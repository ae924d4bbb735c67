package secrets

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	ct := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123"))
	const smARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
	for _, tc := range []struct {
		in      string
		wantOK  bool
		wantErr bool
		want    Ref // Raw and Ciphertext are checked separately
	}{
		{in: "", wantOK: false},
		{in: "plain value", wantOK: false},
		{in: "postgres://u:p@h/db", wantOK: false},
		{in: "arn:aws:iam::123456789012:role/app", wantOK: false},
		{in: "arn:aws:s3:::bucket/key", wantOK: false},
		{in: "SSM:foo", wantOK: false},
		{in: "secretsmanager:prod/db", wantOK: true, want: Ref{Kind: KindSecretsManager, ID: "prod/db"}},
		{in: "secretsmanager:prod/db:password", wantOK: true, want: Ref{Kind: KindSecretsManager, ID: "prod/db", JSONKey: "password"}},
		{in: "secretsmanager:prod/db:password:AWSPREVIOUS", wantOK: true, want: Ref{Kind: KindSecretsManager, ID: "prod/db", JSONKey: "password", VersionStage: "AWSPREVIOUS"}},
		{in: "secretsmanager:prod/db:::0f1e2d3c-aaaa-bbbb-cccc-111122223333", wantOK: true, want: Ref{Kind: KindSecretsManager, ID: "prod/db", VersionID: "0f1e2d3c-aaaa-bbbb-cccc-111122223333"}},
		{in: "secretsmanager:" + smARN + ":password", wantOK: true, want: Ref{Kind: KindSecretsManager, ID: smARN, JSONKey: "password", Region: "eu-west-1"}},
		{in: smARN, wantOK: true, want: Ref{Kind: KindSecretsManager, ID: smARN, Region: "eu-west-1"}},
		{in: smARN + ":password::", wantOK: true, want: Ref{Kind: KindSecretsManager, ID: smARN, JSONKey: "password", Region: "eu-west-1"}},
		{in: smARN + "::AWSCURRENT:", wantOK: true, want: Ref{Kind: KindSecretsManager, ID: smARN, VersionStage: "AWSCURRENT", Region: "eu-west-1"}},
		{in: "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x", wantOK: true, want: Ref{Kind: KindSecretsManager, ID: "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x", Region: "cn-north-1"}},
		{in: "arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter/prod/key", wantOK: true, want: Ref{Kind: KindSSM, ID: "/prod/key", Region: "us-gov-west-1"}},
		{in: "arn:aws:ssm:us-east-1:123456789012:parameter/key", wantOK: true, want: Ref{Kind: KindSSM, ID: "key", Region: "us-east-1"}},
		{in: "ssm:/prod/app/key", wantOK: true, want: Ref{Kind: KindSSM, ID: "/prod/app/key"}},
		{in: "ssm:/prod/app/key:3", wantOK: true, want: Ref{Kind: KindSSM, ID: "/prod/app/key", SSMSelector: "3"}},
		{in: "ssm:name:label-1", wantOK: true, want: Ref{Kind: KindSSM, ID: "name", SSMSelector: "label-1"}},
		{in: "kms:" + ct, wantOK: true, want: Ref{Kind: KindKMS}},

		{in: "secretsmanager:", wantOK: true, wantErr: true},
		{in: "secretsmanager::key", wantOK: true, wantErr: true},
		{in: "secretsmanager:a:b:c:d:e", wantOK: true, wantErr: true},
		{in: "secretsmanager:has space", wantOK: true, wantErr: true},
		{in: "ssm:", wantOK: true, wantErr: true},
		{in: "ssm:/prod/", wantOK: true, wantErr: true},
		{in: "ssm:a:b:c", wantOK: true, wantErr: true},
		{in: "kms:", wantOK: true, wantErr: true},
		{in: "kms:not base64!", wantOK: true, wantErr: true},
		{in: "kms:00000000000000000000001=", wantOK: true, wantErr: true},               // non-zero padding bits: not canonical
		{in: "kms:YWJj", wantOK: true, wantErr: true},                                   // too short to be a KMS blob
		{in: "kms:" + ct[:10] + "\n" + ct[10:], wantOK: true, want: Ref{Kind: KindKMS}}, // wrapped, as base64 wraps at 76
		{in: "arn:aws-iso:secretsmanager:us-east-1:123456789012:secret:x", wantOK: true, wantErr: true},
		{in: "arn:aws:secretsmanager:us-east-1:123:secret:x", wantOK: true, wantErr: true},
		{in: "arn:aws:secretsmanager:Mars:123456789012:secret:x", wantOK: true, wantErr: true},
		{in: "arn:aws:secretsmanager:us-east-1:123456789012:rotation:x", wantOK: true, wantErr: true},
		{in: "arn:aws:secretsmanager:us-east-1:123456789012:secret:x:a:b:c:d", wantOK: true, wantErr: true},
		{in: "arn:aws:ssm:us-east-1:123456789012:document/x", wantOK: true, wantErr: true},
		{in: "arn:aws:ssm:us-east-1:123456789012", wantOK: true, wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			have, ok, err := ParseRef(tc.in)
			if ok != tc.wantOK || (err != nil) != tc.wantErr {
				t.Fatalf("ParseRef(%q): want ok=%v err=%v, have ok=%v err=%v", tc.in, tc.wantOK, tc.wantErr, ok, err)
			}
			if !ok || err != nil {
				return
			}
			if have.Raw != tc.in {
				t.Errorf("want Raw %q, have %q", tc.in, have.Raw)
			}
			if tc.want.Kind == KindKMS {
				if string(have.Ciphertext) != "0123456789abcdef0123" {
					t.Errorf("want the decoded ciphertext, have %q", have.Ciphertext)
				}
				have.Ciphertext = nil
			}
			have.Raw = ""
			if have.Kind != tc.want.Kind || have.ID != tc.want.ID || have.JSONKey != tc.want.JSONKey ||
				have.VersionStage != tc.want.VersionStage || have.VersionID != tc.want.VersionID ||
				have.SSMSelector != tc.want.SSMSelector || have.Region != tc.want.Region {
				t.Errorf("want %+v, have %+v", tc.want, have)
			}
		})
	}
}

func TestRefStringShortensKMS(t *testing.T) {
	ct := base64.StdEncoding.EncodeToString(make([]byte, 300))
	ref, _, err := ParseRef("kms:" + ct)
	if err != nil {
		t.Fatal(err)
	}
	if have := ref.String(); len(have) > 40 || !strings.HasPrefix(have, "kms:") || !strings.Contains(have, "300 bytes") {
		t.Errorf("want a short kms display, have %q", have)
	}
}

func TestMarkers(t *testing.T) {
	refs := []string{"secretsmanager:prod/db:password", "ssm:/a/b", "kms:" + base64.StdEncoding.EncodeToString(make([]byte, 32))}
	v := "postgres://" + Marker(refs[0]) + ":" + Marker(refs[1]) + "@h/" + Marker(refs[2]) + "?x=1"
	spans, err := findMarkers(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != len(refs) {
		t.Fatalf("want %d markers, have %d", len(refs), len(spans))
	}
	for i, s := range spans {
		if s.ref != refs[i] {
			t.Errorf("marker %d: want %q, have %q", i, refs[i], s.ref)
		}
		if have := v[s.start:s.end]; have != Marker(refs[i]) {
			t.Errorf("marker %d: span %q is not the marker", i, have)
		}
	}
	for _, bad := range []string{markerOpen + "abc", markerOpen + "!!!" + markerClose} {
		if _, err := findMarkers("x" + bad); err == nil {
			t.Errorf("findMarkers(%q): want an error", bad)
		}
	}
	if spans, err := findMarkers("${secret(\"ssm:x\")} {{berth}}"); err != nil || len(spans) != 0 {
		t.Errorf("want no markers in ordinary text, have %v, %v", spans, err)
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"secretsmanager:prod/db:password:AWSCURRENT:abc-123", "ssm:/a/b:3", "kms:AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf:k::", "arn:aws:ssm:eu-west-1:123456789012:parameter/a/b",
		"arn:aws:iam::1:role/x", "plain", "ssm:", "secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:n",
		"secretsmanager:a::::", "secretsmanager::k", "ssm:/a//b", "ssm:/a/b/", "ssm:a:b:c", "kms:!!!!", "kms:AAAA",
		"arn:aws-cn:ssm:cn-north-1:123456789012:parameter/x", "arn:aws:secretsmanager:us-east-1:12345678901:secret:x",
		"arn:aws:ssm:us-east-1:123456789012:parameter", "secretsmanager:x:k:AWSCURRENT:" + strings.Repeat("a", 70),
		"kms:" + strings.Repeat("QUJD", 2000) + "=", "ssm:\x00", "secretsmanager:\n",
		"kms:000000\n000000000000000000", "kms:AAAA\r\nAAAAAAAAAAAAAAAAAAAAAAAA",
		"kms:00000000000000000000001=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, ok, err := ParseRef(s)
		if err != nil {
			msg := err.Error()
			if msg == "" || strings.Contains(msg, "\n") {
				t.Fatalf("ParseRef(%q): error is not one line: %q", s, msg)
			}
			if b64, isKMS := strings.CutPrefix(s, "kms:"); isKMS && len(b64) > 24 && strings.Contains(msg, b64) {
				t.Fatalf("ParseRef(%q): the error repeats the ciphertext", s)
			}
		}
		if ok && err == nil && ref.Kind == KindKMS && len(ref.String()) > 60 {
			t.Fatalf("ParseRef(%q): String() is %d bytes; a ciphertext must be shortened", s, len(ref.String()))
		}
		prefixed := strings.HasPrefix(s, "secretsmanager:") || strings.HasPrefix(s, "ssm:") || strings.HasPrefix(s, "kms:")
		if prefixed && !ok {
			t.Fatalf("ParseRef(%q): a reference prefix must report ok", s)
		}
		if !ok && err != nil {
			t.Fatalf("ParseRef(%q): error without ok", s)
		}
		if ok && err == nil {
			if ref.Raw != s {
				t.Fatalf("ParseRef(%q): Raw %q", s, ref.Raw)
			}
			switch ref.Kind {
			case KindSecretsManager, KindSSM:
				if ref.ID == "" {
					t.Fatalf("ParseRef(%q): empty ID", s)
				}
			case KindKMS:
				// Line breaks inside the base64 are skipped, as base64 -d does with a wrapped blob.
				if "kms:"+base64.StdEncoding.EncodeToString(ref.Ciphertext) != strings.NewReplacer("\r", "", "\n", "").Replace(s) {
					t.Fatalf("ParseRef(%q): ciphertext does not round-trip", s)
				}
			default:
				t.Fatalf("ParseRef(%q): kind %v", s, ref.Kind)
			}
		}
		spans, err := findMarkers("a" + Marker(s) + "b")
		if err != nil || len(spans) != 1 || spans[0].ref != s {
			t.Fatalf("Marker(%q) does not round-trip: %v %v", s, spans, err)
		}
	})
}

// FuzzFindMarkers: whatever text surrounds them, the markers Marker builds are found in order with their
// exact spans, and arbitrary text (a broken marker included) never panics.
func FuzzFindMarkers(f *testing.F) {
	f.Add("pre ", "ssm:/a", " mid ", "secretsmanager:b:k", " post")
	f.Add("", "", "", "", "")
	f.Add(markerOpen, "x", markerClose, markerOpen+"!!", "")
	f.Fuzz(func(t *testing.T, a, r1, b, r2, c string) {
		_, _ = findMarkers(a + b + c) // must not panic
		if strings.Contains(a+b+c, markerOpen) || strings.Contains(a+b+c, markerClose) {
			return // the text itself holds marker delimiters: only "no panic" is checked
		}
		v := a + Marker(r1) + b + Marker(r2) + c
		spans, err := findMarkers(v)
		if err != nil || len(spans) != 2 {
			t.Fatalf("want two markers, have %v, %v", spans, err)
		}
		for i, want := range []string{r1, r2} {
			if spans[i].ref != want || v[spans[i].start:spans[i].end] != Marker(want) {
				t.Fatalf("marker %d: have %+v", i, spans[i])
			}
		}
		if spans[0].start != len(a) || spans[1].end != len(v)-len(c) {
			t.Fatalf("spans %+v in %q", spans, v)
		}
	})
}
