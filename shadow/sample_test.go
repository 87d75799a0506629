package shadow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/internal/human"
	"strangler/internal/testkit"
	"strangler/shadow"
)

// secrets are the patient data and credentials of the sample tests.
var secrets = []string{"MRN9988776", "Jane Doe", "Jane Smith", "123-45-6789", "1970-01-31", "secret-token", "s3cr3t-cookie", "chart-99", "10.1.2.3", "PatientApp"}

func TestASampleHoldsNoValueOfTheRequestOrTheAnswersInClear(t *testing.T) {
	// compare.headers names, besides X-Patient, headers no sample keeps
	// whatever it says: the client's software and address, credentials.
	cfg := config.Compare{Headers: []string{"Set-Cookie", "X-Patient", "User-Agent", "X-Client-Ip", "X-Auth-User", "X-Request-Signature", "X-Api-Credential"}}
	for _, redact := range []bool{false, true} {
		c := cfg
		if redact {
			c.Redact = append(c.Redact, "patient.name", "ssn")
		}
		cmp := newComparer(t, c)
		p := jsonResponse(200, `{"patient":{"name":"Jane Doe","born":"1970-01-31","city":"Oslo"},"ssn":"123-45-6789","visits":3}`)
		p.Header.Set("Set-Cookie", "session=s3cr3t-cookie")
		p.Header.Set("X-Patient", "chart-99")
		o := jsonResponse(500, `{"patient":{"name":"Jane Smith","city":"Oslo"},"ssn":"123-45-6780","visits":4}`)
		req := shadow.RequestCopy{
			Method: "POST", Target: "/patients/MRN9988776/search?ssn=123-45-6789&page=2", Pattern: "/patients/{id}/search",
			Header: http.Header{
				"Authorization":       {"Bearer secret-token"},
				"Cookie":              {"session=s3cr3t-cookie"},
				"X-Patient":           {"chart-99"},
				"User-Agent":          {"PatientApp/5.2 (Jane Doe's phone)"},
				"X-Forwarded-For":     {"10.1.2.3"},
				"X-App-Version":       {"MRN9988776"},
				"X-Client-Ip":         {"10.1.2.3"},
				"X-Auth-User":         {"Jane Doe"},
				"X-Request-Signature": {"secret-token"},
				"X-Api-Credential":    {"secret-token"},
				"Content-Type":        {"application/json"},
				"Accept":              {"application/json"},
			},
			Body: []byte(`{"patient": {"name": "Jane Doe"}, "limit": 10}`),
		}
		for _, res := range []shadow.Result{cmp.Compare(p, o), cmp.Compare(p, jsonResponse(200, `{}`))} {
			s := shadow.NewSample("search", time.Now(), req, "http://legacy:8080", "http://modern:9090/v2", res, cmp.Redactor())
			out, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range secrets {
				if strings.Contains(string(out), secret) {
					t.Errorf("redact %v: the sample carries %q:\n%s", redact, secret, out)
				}
			}
			hash := cmp.Redactor().Hasher().Hash
			wantTarget := "/patients/{id:" + hash("MRN9988776") + "}/search?ssn={" + hash("123-45-6789") + "}&page={" + hash("2") + "}"
			if s.Target != wantTarget || s.Method != "POST" {
				t.Errorf("got %s %s, want POST %s", s.Method, s.Target, wantTarget)
			}
			for _, curl := range []string{s.CurlPrimary, s.CurlOther} {
				if got := regexp.MustCompile(`-H '?([A-Za-z-]+):`).FindAllStringSubmatch(curl, -1); len(got) != 5 ||
					got[0][1] != "Accept" || got[1][1] != "Content-Type" || got[2][1] != "X-Patient" {
					t.Errorf("the curl command keeps other headers than Accept, Content-Type and X-Patient (hashed): %s", curl)
				}
				if !strings.Contains(curl, "X-Patient: {"+hash("chart-99")+"}") || !strings.Contains(curl, wantTarget) {
					t.Errorf("the curl command lacks the hashed header or target: %s", curl)
				}
				if !strings.HasSuffix(curl, "# replace each {…h:…} placeholder with the value it stands for") {
					t.Errorf("the curl command does not say what to fill in: %s", curl)
				}
			}
		}
	}
}

func TestTheSameMismatchOnTheSameEntityHashesAlike(t *testing.T) {
	sample := func(c config.Compare) shadow.Sample {
		cmp := newComparer(t, c)
		res := cmp.Compare(jsonResponse(200, `{"name":"Jane Doe","n":1}`), jsonResponse(200, `{"name":"Jane","n":1}`))
		req := shadow.RequestCopy{Method: "GET", Target: "/p/MRN9988776", Pattern: "/p/{id}"}
		return shadow.NewSample("r", time.Time{}, req, "http://a", "http://b", res, cmp.Redactor())
	}
	a, b := sample(config.Compare{}), sample(config.Compare{Ignore: []string{"x"}})
	if !reflect.DeepEqual(a, b) {
		t.Errorf("two samples of one mismatch differ:\n%+v\n%+v", a, b)
	}
}

// TestASampleKeepsNoQueryNameOrBodyKeyThatIsData sends the patient's
// record number as the path parameter, as a query name and as a key of
// the body, and another as a query name that reads like none: the
// sample shows placeholders for all of them, in its target and both
// curl commands.
func TestASampleKeepsNoQueryNameOrBodyKeyThatIsData(t *testing.T) {
	cmp := newComparer(t, config.Compare{})
	req := shadow.RequestCopy{Method: "PUT", Target: "/patients/MRN-7Q4Z-TEST?MRN-7Q4Z-TEST=1&mrn7730019=2&full=1", Pattern: "/patients/{id}",
		Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"MRN-7Q4Z-TEST":{"seen":1},"name":"x"}`)}
	res := cmp.Compare(jsonResponse(200, `{"n":1}`), jsonResponse(200, `{"n":2}`))
	s := shadow.NewSample("r", time.Now(), req, "http://a", "http://b", res, cmp.Redactor())
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"MRN-7Q4Z-TEST", "mrn7730019"} {
		if strings.Contains(strings.ToLower(string(out)), strings.ToLower(v)) {
			t.Errorf("the sample holds %q:\n%s", v, out)
		}
	}
	if !strings.Contains(s.Target, "&full={") || !strings.Contains(s.CurlPrimary, `"name":"{h:`) {
		t.Errorf("the sample hides the names that are not data too: %s\n%s", s.Target, s.CurlPrimary)
	}
}

func TestABodyThatIsNotJSONIsLeftOut(t *testing.T) {
	cmp := newComparer(t, config.Compare{})
	req := shadow.RequestCopy{Method: "POST", Target: "/p", Pattern: "/p", Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		Body: []byte("name=Jane+Doe")}
	s := shadow.NewSample("r", time.Now(), req, "http://a", "http://b", shadow.Result{}, cmp.Redactor())
	if strings.Contains(s.CurlPrimary, "Jane") || strings.Contains(s.CurlPrimary, "--data-binary '") {
		t.Errorf("a form body was not left out: %s", s.CurlPrimary)
	}
	if !strings.HasSuffix(s.CurlPrimary, "# the request body (13 bytes, not JSON) is not kept: add it with --data-binary") {
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

// fillIn does what an operator does with a sample's curl command: replace
// each placeholder with the value it stands for, found among values.
func fillIn(t *testing.T, cmd string, r *shadow.Redactor, values ...string) string {
	t.Helper()
	byHash := map[string]string{}
	for _, v := range values {
		byHash[r.Hasher().Hash(v)] = v
	}
	return regexp.MustCompile(`\{(?:[A-Za-z*]+:)?(h:[0-9a-f]{16})\}`).ReplaceAllStringFunc(cmd, func(p string) string {
		hash := p[strings.Index(p, "h:") : len(p)-1]
		v, ok := byHash[hash]
		if !ok {
			t.Fatalf("placeholder %s stands for none of %q", p, values)
		}
		return v
	})
}

func TestACurlCommandWithItsPlaceholdersFilledInReplaysTheRequest(t *testing.T) {
	testkit.Tool(t, "curl", "Debian: apt-get install curl")
	note := "it's 100% \"fine\"\n\\o/ $HOME `id` é"
	for _, tc := range []struct {
		name   string
		keep   []string
		req    shadow.RequestCopy
		values []string
		// wantBody is the JSON the backend must receive; "" means none.
		wantBody string
	}{
		{name: "a GET with path parameters, a query and headers",
			req: shadow.RequestCopy{Method: "GET", Target: "/patients/42/photos?full=1&q=ab", Pattern: "/patients/{id}/photos", Header: http.Header{
				"Accept":              {"application/json"},
				"User-Agent":          {"app/1.2 (it's)"},
				"X-Multi":             {"one", "two"},
				"Connection":          {"keep-alive, X-Hop"},
				"X-Hop":               {"dropped"},
				"X-Strangler-Backend": {"dropped"},
			}},
			values: []string{"42", "1", "ab"}},
		{name: "a POST whose JSON body keeps a value with quotes, percent signs and newlines",
			keep: []string{"note"},
			req: shadow.RequestCopy{Method: "POST", Target: "/patients", Pattern: "/patients", Header: http.Header{
				"Content-Type": {"application/json"},
			}, Body: []byte(`{"note": ` + mustJSON(note) + `, "name": "Jane Doe", "n": 1, "ok": true, "tags": ["a", null]}`)},
			values:   []string{"Jane Doe", "1", "true", "a", "null"},
			wantBody: `{"note":` + mustJSON(note) + `,"name":"Jane Doe","n":1,"ok":true,"tags":["a",null]}`},
		{name: "a PUT whose kept value is not valid UTF-8 goes through printf",
			keep: []string{"blob"},
			req: shadow.RequestCopy{Method: "PUT", Target: "/blobs/1", Pattern: "/blobs/{id}", Header: http.Header{
				"Content-Type": {"application/json"},
			}, Body: []byte("{\"blob\":\"-\xff'%\\n\"}")},
			values:   []string{"1"},
			wantBody: "{\"blob\":\"-\xff'%\\n\"}"},
		{name: "a POST whose kept texts hold a tab, a C1 control and U+202E goes through printf",
			keep: []string{"note"},
			req: shadow.RequestCopy{Method: "POST", Target: "/notes?\u202eq=1", Pattern: "/notes", Header: http.Header{
				"Content-Type": {"application/json"},
				"Accept":       {"application/json;\tq=1, text/\u202e\u009b2J"},
			}, Body: []byte("{\"note\":\"\u202e' ; id ; '\u009b2J\"}")},
			values:   []string{"\u202eq", "1"}, // a query name that is no field name is a placeholder too
			wantBody: "{\"note\":\"\u202e' ; id ; '\u009b2J\"}"},
		{name: "a PUT whose query names and body keys are the patient's record number",
			req: shadow.RequestCopy{Method: "PUT", Target: "/patients/MRN-7Q4Z-TEST?mrn7730019=1", Pattern: "/patients/{id}", Header: http.Header{
				"Content-Type": {"application/json"},
			}, Body: []byte(`{"MRN-7Q4Z-TEST": {"seen": "2024"}, "name": "x"}`)},
			values:   []string{"MRN-7Q4Z-TEST", "mrn7730019", "1", "2024", "x"},
			wantBody: `{"MRN-7Q4Z-TEST":{"seen":"2024"},"name":"x"}`},
		{name: "a DELETE without a body",
			req:    shadow.RequestCopy{Method: "DELETE", Target: "/patients/42/x", Pattern: "/patients/{id}/x"},
			values: []string{"42"}},
	} {
		t.Run(tc.name+" reaches the backend", func(t *testing.T) {
			srv, got := recorder(t)
			cmp := newComparer(t, config.Compare{KeepValues: tc.keep})
			s := shadow.NewSample("r", time.Now(), tc.req, "http://unused.invalid", srv.URL+"/", shadow.Result{}, cmp.Redactor())
			// Pasted into a terminal, the command must show what it runs
			// and do nothing to the terminal itself.
			if i := strings.IndexFunc(s.CurlOther, func(r rune) bool { return r != '\n' && human.ActsOnTerminal(r) }); i >= 0 {
				t.Errorf("the command holds %q, which a terminal acts on: %s", []rune(s.CurlOther[i:])[0], s.CurlOther)
			}
			cmd := fillIn(t, s.CurlOther, cmp.Redactor(), tc.values...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s\ncommand: %s", err, out, cmd)
			}
			r := <-got
			if r.method != tc.req.Method || r.uri != tc.req.Target {
				t.Errorf("got %s %s, want %s %s", r.method, r.uri, tc.req.Method, tc.req.Target)
			}
			if string(r.body) != tc.wantBody {
				t.Errorf("got body %q, want %q", r.body, tc.wantBody)
			}
			// Only the headers a sample keeps arrive: no User-Agent, no
			// header compare.headers does not name.
			want := http.Header{"X-Strangler-Shadow": {"1"}}
			for _, k := range []string{"Accept", "Content-Type"} {
				if v := tc.req.Header[k]; v != nil {
					want[k] = v
				}
			}
			if tc.wantBody != "" {
				want["Content-Length"] = []string{fmt.Sprint(len(tc.wantBody))}
			}
			if !equalHeaders(r.header, want) {
				t.Errorf("got headers %v, want %v\ncommand: %s", r.header, want, cmd)
			}
		})
	}
}

func mustJSON(v string) string {
	b, _ := json.Marshal(v)
	return string(b)
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
		s := shadow.NewSample("r", time.Now(), shadow.RequestCopy{Method: "OPTIONS", Target: target, Pattern: "/{x}",
			Header: http.Header{"Accept": {`'"$x\`}}, Body: []byte("'\"`$(id)\\")}, "http://a", "http://b", shadow.Result{}, cmp.Redactor())
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

// TestRedactWinsOverKeepValuesInACurlCommand: a header that compare.redact
// names stays a placeholder in the curl commands even when keep_values
// names it too.
func TestRedactWinsOverKeepValuesInACurlCommand(t *testing.T) {
	cmp := newComparer(t, config.Compare{Headers: []string{"X-Patient"}, KeepValues: []string{"header.X-Patient"}, Redact: []string{"X-Patient"}})
	req := shadow.RequestCopy{Method: "GET", Target: "/p", Pattern: "/p", Header: http.Header{"X-Patient": {"chart-99"}}}
	s := shadow.NewSample("r", time.Time{}, req, "http://a", "http://b", cmp.Compare(jsonResponse(200, `{}`), jsonResponse(500, `{}`)), cmp.Redactor())
	want := "-H 'X-Patient: {" + cmp.Redactor().Hasher().Hash("chart-99") + "}'"
	for _, curl := range []string{s.CurlPrimary, s.CurlOther} {
		if !strings.Contains(curl, want) || strings.Contains(curl, "chart-99") {
			t.Errorf("got %s, want the header as %s", curl, want)
		}
	}
}
