package shadow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/shadow"
)

func TestRedactionKeepsSecretsOutOfSamples(t *testing.T) {
	cmp := newComparer(t, config.Compare{
		Headers: []string{"Set-Cookie", "X-Patient"},
		Redact:  []string{"patient.name", "ssn", "x-patient"},
	})
	r := cmp.Redactor()
	secrets := []string{"Jane Doe", "Jane Smith", "secret-token", "s3cr3t-cookie", "123-45-6789", "chart-99"}

	p := jsonResponse(200, `{"patient":{"name":"Jane Doe","city":"Oslo"},"ssn":"123-45-6789"}`)
	p.Header.Set("Set-Cookie", "session=s3cr3t-cookie")
	p.Header.Set("X-Patient", "chart-99")
	o := jsonResponse(200, `{"patient":{"name":"Jane Smith","city":"Oslo"},"ssn":"123-45-6780"}`)
	res := cmp.Compare(p, o)
	missing := jsonResponse(200, `{}`)
	res2 := cmp.Compare(p, missing)

	req := shadow.RequestCopy{
		Method: "POST",
		Target: "/patients/search?ssn=123-45-6789&page=2",
		Header: http.Header{
			"Authorization": {"Bearer secret-token"},
			"Cookie":        {"session=s3cr3t-cookie"},
			"X-Patient":     {"chart-99"},
			"Content-Type":  {"application/json"},
		},
		Body: []byte(`{"patient": {"name": "Jane Doe"}, "limit": 10}`),
	}
	for _, s := range []shadow.Sample{
		shadow.NewSample("search", time.Now(), req, "http://legacy:8080", "http://modern:9090/v2", res, r),
		shadow.NewSample("search", time.Now(), req, "http://legacy:8080", "http://modern:9090/v2", res2, r),
	} {
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range secrets {
			if strings.Contains(string(out), secret) {
				t.Errorf("the sample carries %q:\n%s", secret, out)
			}
		}
		if !strings.Contains(s.CurlPrimary, "http://legacy:8080/patients/search?ssn="+r.Hash("123-45-6789")+"&page=2") {
			t.Errorf("the primary curl does not carry the hashed query: %s", s.CurlPrimary)
		}
		for _, curl := range []string{s.CurlPrimary, s.CurlOther} {
			for _, want := range []string{
				r.Hash("Jane Doe"), "Authorization: " + r.Hash("Bearer secret-token"),
				"Cookie: " + r.Hash("session=s3cr3t-cookie"), "X-Patient: " + r.Hash("chart-99"),
			} {
				if !strings.Contains(curl, want) {
					t.Errorf("the curl command lacks %q: %s", want, curl)
				}
			}
		}
	}

	// The same name hashes alike in the response diff and the request body.
	want := []shadow.Diff{
		{Path: "header.Set-Cookie", Primary: `"` + r.Hash("session=s3cr3t-cookie") + `"`},
		{Path: "header.X-Patient", Primary: `"` + r.Hash("chart-99") + `"`},
		{Path: "patient.name", Primary: `"` + r.Hash("Jane Doe") + `"`, Other: `"` + r.Hash("Jane Smith") + `"`},
		{Path: "ssn", Primary: `"` + r.Hash("123-45-6789") + `"`, Other: `"` + r.Hash("123-45-6780") + `"`},
	}
	if !slices.Equal(res.Diffs, want) {
		t.Errorf("got diffs\n%+v\nwant\n%+v", res.Diffs, want)
	}
	// A value containing a redacted field is rendered with the field hashed.
	if d := res2.Diffs[2]; d.Path != "patient" || d.Primary != `{"name":"`+r.Hash("Jane Doe")+`","city":"Oslo"}` {
		t.Errorf("got %+v, want patient rendered with its name hashed", d)
	}
}

func TestHashesAreKeyedAndStable(t *testing.T) {
	a := newComparer(t, config.Compare{}).Redactor()
	b := newComparer(t, config.Compare{}).Redactor()
	other, err := shadow.NewComparer(config.Compare{}, shadow.NewHashKey())
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash("Jane Doe") != b.Hash("Jane Doe") {
		t.Error("one key hashes the same value differently")
	}
	if a.Hash("Jane Doe") == other.Redactor().Hash("Jane Doe") {
		t.Error("two keys hash a value alike")
	}
	if a.Hash("Jane Doe") == a.Hash("Jane Dow") {
		t.Error("two values hash alike")
	}
}

func TestRedactionLeavesOutABodyItCannotRedact(t *testing.T) {
	cmp := newComparer(t, config.Compare{Redact: []string{"name"}})
	req := shadow.RequestCopy{Method: "POST", Target: "/p", Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		Body: []byte("name=Jane+Doe")}
	s := shadow.NewSample("r", time.Now(), req, "http://a", "http://b", shadow.Result{}, cmp.Redactor())
	if strings.Contains(s.CurlPrimary, "Jane") || strings.Contains(s.CurlPrimary, "--data-binary") {
		t.Errorf("a form body was not left out: %s", s.CurlPrimary)
	}
	if !strings.Contains(s.CurlPrimary, "# request body left out: 13 bytes") {
		t.Errorf("the command does not say the body was left out: %s", s.CurlPrimary)
	}
}

// received is a request as a test backend saw it.
type received struct {
	method, uri string
	header      http.Header
	body        []byte
}

// recorder is a backend that records each request it gets.
func recorder(t *testing.T) (*httptest.Server, <-chan received) {
	got := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- received{r.Method, r.RequestURI, r.Header.Clone(), body}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestCurlCommandsReplayTheExactRequest(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	jsonBody := "{\"note\":\"it's 100% \\\"fine\\\"\\n\\\\o/ $HOME `id` é\",\n \"n\": 1}"
	for _, tc := range []struct {
		name   string
		redact []string
		req    shadow.RequestCopy
		// wantBody is what the backend must receive; nil means req.Body.
		wantBody []byte
	}{
		{name: "a GET with a query and headers",
			req: shadow.RequestCopy{Method: "GET", Target: "/patients/42?full=1&q=a%20b&x=%27", Header: http.Header{
				"Accept":              {"application/json"},
				"User-Agent":          {"app/1.2 (it's)"},
				"X-Multi":             {"one", "two"},
				"Traceparent":         {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
				"Connection":          {"keep-alive, X-Hop"},
				"X-Hop":               {"dropped"},
				"X-Strangler-Backend": {"dropped"},
			}}},
		{name: "a POST with quotes, percent signs and newlines in a JSON body",
			req: shadow.RequestCopy{Method: "POST", Target: "/patients", Header: http.Header{
				"Content-Type": {"application/json"},
			}, Body: []byte(jsonBody)}},
		{name: "a PUT with control bytes and invalid UTF-8 in the body",
			req: shadow.RequestCopy{Method: "PUT", Target: "/blobs/1", Header: http.Header{
				"Content-Type": {"application/octet-stream"},
			}, Body: []byte("-\x00\x01\t\r\n\xff'%\\n\x1b[2J" + strings.Repeat("x", 2000))}},
		{name: "a POST whose JSON body has a redacted field",
			redact: []string{"name"},
			req: shadow.RequestCopy{Method: "POST", Target: "/p", Header: http.Header{"Content-Type": {"application/json"}},
				Body: []byte(`{"name": "Jane Doe", "age": 40}`)},
			wantBody: []byte(`{"name":"REDACTED","age":40}`)},
		{name: "a DELETE without a body",
			req: shadow.RequestCopy{Method: "DELETE", Target: "/patients/42/../7/./x"}},
	} {
		t.Run(tc.name+" reaches the backend exactly", func(t *testing.T) {
			srv, got := recorder(t)
			cmp := newComparer(t, config.Compare{Redact: tc.redact})
			s := shadow.NewSample("r", time.Now(), tc.req, "http://unused.invalid", srv.URL+"/", shadow.Result{}, cmp.Redactor())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, "sh", "-c", s.CurlOther).CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s\ncommand: %s", err, out, s.CurlOther)
			}
			r := <-got
			if r.method != tc.req.Method || r.uri != tc.req.Target {
				t.Errorf("got %s %s, want %s %s", r.method, r.uri, tc.req.Method, tc.req.Target)
			}
			wantBody := tc.req.Body
			if tc.wantBody != nil {
				wantBody = []byte(strings.ReplaceAll(string(tc.wantBody), "REDACTED", cmp.Redactor().Hash("Jane Doe")))
			}
			if string(r.body) != string(wantBody) {
				t.Errorf("got body %q, want %q", r.body, wantBody)
			}
			want := http.Header{"X-Strangler-Shadow": {"1"}}
			for k, v := range tc.req.Header {
				switch k {
				case "Connection", "X-Hop", "X-Strangler-Backend":
				default:
					want[k] = v
				}
			}
			if len(wantBody) > 0 {
				want["Content-Length"] = []string{fmt.Sprint(len(wantBody))}
			}
			if !equalHeaders(r.header, want) {
				t.Errorf("got headers %v, want %v\ncommand: %s", r.header, want, s.CurlOther)
			}
		})
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestCurlCommandsAreValidShell(t *testing.T) {
	cmp := newComparer(t, config.Compare{})
	for _, target := range []string{"/a'b", "/a b?c=$(id)", "/{x}[0]", "*", "/;rm -rf /"} {
		s := shadow.NewSample("r", time.Now(), shadow.RequestCopy{Method: "OPTIONS", Target: target,
			Header: http.Header{"X-Q": {`'"$x\`}}, Body: []byte("'\"`$(id)\\")}, "http://a", "http://b", shadow.Result{}, cmp.Redactor())
		if out, err := exec.Command("sh", "-n", "-c", s.CurlPrimary).CombinedOutput(); err != nil {
			t.Errorf("sh -n refuses %s: %v %s", s.CurlPrimary, err, out)
		}
	}
}

func TestMemorySamplesKeepsTheNewestPerRoute(t *testing.T) {
	ctx := context.Background()
	store := shadow.NewMemorySamples(3)
	var _ shadow.SampleStore = store
	for i := range 5 {
		store.Add(ctx, shadow.Sample{Route: "a", PrimaryStatus: i})
		store.Add(ctx, shadow.Sample{Route: "b", PrimaryStatus: 100 + i})
	}
	statuses := func(ss []shadow.Sample) []int {
		var out []int
		for _, s := range ss {
			out = append(out, s.PrimaryStatus)
		}
		return out
	}
	for _, tc := range []struct {
		route string
		limit int
		want  []int
	}{
		{"a", 0, []int{4, 3, 2}},
		{"a", 2, []int{4, 3}},
		{"b", 10, []int{104, 103, 102}},
		{"", 4, []int{104, 4, 103, 3}},
		{"c", 0, nil},
	} {
		got, err := store.List(ctx, tc.route, tc.limit)
		if err != nil || !slices.Equal(statuses(got), tc.want) {
			t.Errorf("List(%q, %d) = %v, %v, want %v", tc.route, tc.limit, statuses(got), err, tc.want)
		}
	}
}
