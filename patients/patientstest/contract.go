// Package patientstest checks that an implementation of the reference
// patients API keeps its contract, so the in-memory, legacy (MariaDB) and
// modern (PostgreSQL) backends are held to the same tests.
package patientstest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"strangler/patients"
)

// Features are the optional parts of the contract a backend claims.
type Features struct {
	// Idempotent backends honour Idempotency-Key on writes.
	Idempotent bool
	// KeepsPrimaryID backends create rows under X-Strangler-Primary-Id.
	KeepsPrimaryID bool
}

// Run checks the contract against the API h, which must start empty.
func Run(t *testing.T, h http.Handler, f Features) {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := &client{t: t, base: srv.URL}

	t.Run("a created patient reads back the same", func(t *testing.T) {
		c := c.with(t)
		p := patients.Patient{FirstName: "Ada", LastName: "Lovelace", BirthDate: "1815-12-10", Email: "ada@example.org",
			MRNs: []patients.MRN{{Site: "RVH", MRN: "1000001"}, {Site: "MGH", MRN: "2000001"}}}
		resp, created := c.createPatient(p, nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /patients: got %d, want 201", resp.StatusCode)
		}
		if got, want := resp.Header.Get("Location"), fmt.Sprintf("/patients/%d", created.ID); got != want {
			t.Errorf("Location: got %q, want %q", got, want)
		}
		p.ID = created.ID
		p.MRNs = []patients.MRN{{Site: "MGH", MRN: "2000001"}, {Site: "RVH", MRN: "1000001"}}
		var got patients.Patient
		c.getJSON(fmt.Sprintf("/patients/%d", p.ID), http.StatusOK, &got)
		if !equal(got, p) {
			t.Errorf("GET: got %+v, want %+v (MRNs by site)", got, p)
		}
	})

	t.Run("HEAD answers as GET does, without the body", func(t *testing.T) {
		c := c.with(t)
		_, created := c.createPatient(patients.Patient{FirstName: "Grace", LastName: "Hopper", BirthDate: "1906-12-09"}, nil)
		for _, path := range []string{fmt.Sprintf("/patients/%d", created.ID), "/patients"} {
			get := c.do(http.MethodGet, path, nil, nil)
			head := c.do(http.MethodHead, path, nil, nil)
			body, err := io.ReadAll(head.Body)
			if err != nil {
				t.Fatal(err)
			}
			if head.StatusCode != http.StatusOK || len(body) != 0 || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
				t.Errorf("HEAD %s: got %d, %q, %d body bytes; want 200, %q, none (as GET, bodiless)",
					path, head.StatusCode, head.Header.Get("Content-Type"), len(body), get.Header.Get("Content-Type"))
			}
		}
	})

	t.Run("patients are listed a page at a time by id", func(t *testing.T) {
		c := c.with(t)
		var ids []int64
		for i := range 5 {
			_, p := c.createPatient(patients.Patient{FirstName: fmt.Sprint("P", i), LastName: "List"}, nil)
			ids = append(ids, p.ID)
		}
		var page struct{ Patients []patients.Patient }
		c.getJSON(fmt.Sprintf("/patients?after=%d&limit=2", ids[0]), http.StatusOK, &page)
		if len(page.Patients) != 2 || page.Patients[0].ID != ids[1] || page.Patients[1].ID != ids[2] {
			t.Errorf("page after %d: got %+v, want ids %v", ids[0], page.Patients, ids[1:3])
		}
		c.getJSON("/patients?limit=0", http.StatusBadRequest, nil)
	})

	t.Run("an update replaces the patient and keeps MRNs it does not mention", func(t *testing.T) {
		c := c.with(t)
		_, p := c.createPatient(patients.Patient{FirstName: "Grace", LastName: "Hopper", MRNs: []patients.MRN{{Site: "RVH", MRN: "1000002"}}}, nil)
		p.LastName, p.BirthDate, p.MRNs = "Murray Hopper", "1906-12-09", nil
		resp := c.do(http.MethodPut, fmt.Sprintf("/patients/%d", p.ID), jsonBody(p), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT: got %d, want 200", resp.StatusCode)
		}
		var got patients.Patient
		c.getJSON(fmt.Sprintf("/patients/%d", p.ID), http.StatusOK, &got)
		p.MRNs = []patients.MRN{{Site: "RVH", MRN: "1000002"}}
		if !equal(got, p) {
			t.Errorf("after PUT: got %+v, want %+v", got, p)
		}
		p.MRNs = []patients.MRN{{Site: "JGH", MRN: "3000002"}}
		c.do(http.MethodPut, fmt.Sprintf("/patients/%d", p.ID), jsonBody(p), nil)
		c.getJSON(fmt.Sprintf("/patients/%d", p.ID), http.StatusOK, &got)
		if !equal(got, p) {
			t.Errorf("after PUT with MRNs: got %+v, want %+v", got, p)
		}
	})

	t.Run("an MRN belongs to one patient", func(t *testing.T) {
		c := c.with(t)
		c.createPatient(patients.Patient{FirstName: "Alan", LastName: "Turing", MRNs: []patients.MRN{{Site: "RVH", MRN: "1000003"}}}, nil)
		resp := c.do(http.MethodPost, "/patients", jsonBody(patients.Patient{FirstName: "Alan", LastName: "Other", MRNs: []patients.MRN{{Site: "RVH", MRN: "1000003"}}}), nil)
		c.wantError(resp, http.StatusConflict)
	})

	t.Run("a deleted patient is gone with its photos", func(t *testing.T) {
		c := c.with(t)
		_, p := c.createPatient(patients.Patient{FirstName: "Edsger", LastName: "Dijkstra"}, nil)
		ph := c.addPhoto(p.ID, []byte("GIF89a"), nil)
		if resp := c.do(http.MethodDelete, fmt.Sprintf("/patients/%d", p.ID), nil, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE: got %d, want 204", resp.StatusCode)
		}
		c.wantError(c.do(http.MethodGet, fmt.Sprintf("/patients/%d", p.ID), nil, nil), http.StatusNotFound)
		c.wantError(c.do(http.MethodGet, fmt.Sprintf("/photos/%d", ph.ID), nil, nil), http.StatusNotFound)
		c.wantError(c.do(http.MethodDelete, fmt.Sprintf("/patients/%d", p.ID), nil, nil), http.StatusNotFound)
	})

	t.Run("a photo streams back byte for byte", func(t *testing.T) {
		c := c.with(t)
		_, p := c.createPatient(patients.Patient{FirstName: "Barbara", LastName: "Liskov"}, nil)
		// Larger than one chunk, and not a multiple of it.
		data := make([]byte, 2*patients.PhotoChunk+12345)
		rand.Read(data)
		ph := c.addPhoto(p.ID, data, nil)
		if ph.Size != int64(len(data)) || ph.PatientID != p.ID || ph.ContentType != "image/jpeg" {
			t.Errorf("stored photo: got %+v", ph)
		}
		resp := c.do(http.MethodGet, fmt.Sprintf("/photos/%d", ph.ID), nil, nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
			t.Errorf("GET /photos/%d: got %d with %d bytes, want 200 with the %d bytes sent", ph.ID, resp.StatusCode, len(body), len(data))
		}
		if got := resp.Header.Get("Content-Type"); got != "image/jpeg" {
			t.Errorf("Content-Type: got %q, want image/jpeg", got)
		}
		var list struct{ Photos []patients.Photo }
		c.getJSON(fmt.Sprintf("/patients/%d/photos", p.ID), http.StatusOK, &list)
		if len(list.Photos) != 1 || list.Photos[0] != ph {
			t.Errorf("photo list: got %+v, want [%+v]", list.Photos, ph)
		}
	})

	t.Run("a photo above the limit is refused", func(t *testing.T) {
		c := c.with(t)
		_, p := c.createPatient(patients.Patient{FirstName: "Donald", LastName: "Knuth"}, nil)
		resp := c.do(http.MethodPost, fmt.Sprintf("/patients/%d/photos", p.ID), bytes.NewReader(make([]byte, patients.MaxPhotoSize+1)), http.Header{"Content-Type": {"image/png"}})
		c.wantError(resp, http.StatusRequestEntityTooLarge)
		c.wantError(c.do(http.MethodPost, fmt.Sprintf("/patients/%d/photos", p.ID), strings.NewReader(""), nil), http.StatusUnprocessableEntity)
	})

	t.Run("bad requests get JSON errors", func(t *testing.T) {
		c := c.with(t)
		c.wantError(c.do(http.MethodGet, "/patients/999999", nil, nil), http.StatusNotFound)
		c.wantError(c.do(http.MethodGet, "/patients/abc", nil, nil), http.StatusNotFound)
		c.wantError(c.do(http.MethodGet, "/nowhere", nil, nil), http.StatusNotFound)
		c.wantError(c.do(http.MethodPatch, "/patients/1", nil, nil), http.StatusMethodNotAllowed)
		c.wantError(c.do(http.MethodPost, "/patients", strings.NewReader(`{"first_name":`), nil), http.StatusBadRequest)
		c.wantError(c.do(http.MethodPost, "/patients", strings.NewReader(`{"first_name":"A","last_name":"B","ssn":"1"}`), nil), http.StatusBadRequest)
		c.wantError(c.do(http.MethodPost, "/patients", strings.NewReader(`{"first_name":"A"}`), nil), http.StatusUnprocessableEntity)
		c.wantError(c.do(http.MethodPost, "/patients", strings.NewReader(`{"first_name":"A","last_name":"B","birth_date":"31/01/1970"}`), nil), http.StatusUnprocessableEntity)
		c.wantError(c.do(http.MethodPost, "/patients", strings.NewReader(`{"first_name":"A","last_name":"B","email":"not an address"}`), nil), http.StatusUnprocessableEntity)
		c.wantError(c.do(http.MethodPost, "/patients/999999/photos", strings.NewReader("x"), nil), http.StatusNotFound)
		c.wantError(c.do(http.MethodGet, "/patients/999999/photos", nil, nil), http.StatusNotFound)
	})

	if f.KeepsPrimaryID {
		t.Run("a dual-written create keeps the primary's id", func(t *testing.T) {
			c := c.with(t)
			resp, p := c.createPatient(patients.Patient{FirstName: "Frances", LastName: "Allen"}, http.Header{"X-Strangler-Primary-Id": {"4711"}})
			if resp.StatusCode != http.StatusCreated || p.ID != 4711 || resp.Header.Get("Location") != "/patients/4711" {
				t.Fatalf("got %d, id %d, Location %q; want 201, 4711, /patients/4711", resp.StatusCode, p.ID, resp.Header.Get("Location"))
			}
			ph := c.addPhoto(4711, []byte("png"), http.Header{"X-Strangler-Primary-Id": {"815"}})
			if ph.ID != 815 {
				t.Errorf("photo id: got %d, want 815", ph.ID)
			}
			resp = c.do(http.MethodPost, "/patients", jsonBody(patients.Patient{FirstName: "F", LastName: "A"}), http.Header{"X-Strangler-Primary-Id": {"4711"}})
			c.wantError(resp, http.StatusConflict)
		})
	}

	if f.Idempotent {
		t.Run("a write repeated with its Idempotency-Key applies once", func(t *testing.T) {
			c := c.with(t)
			h := http.Header{"Idempotency-Key": {"create-margaret"}}
			p := patients.Patient{FirstName: "Margaret", LastName: "Hamilton"}
			r1, first := c.createPatient(p, h)
			r2, second := c.createPatient(p, h)
			if r1.StatusCode != http.StatusCreated || r2.StatusCode != http.StatusCreated || first.ID != second.ID {
				t.Errorf("got %d id %d, then %d id %d; want 201 twice with one id", r1.StatusCode, first.ID, r2.StatusCode, second.ID)
			}
			if r2.Header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("the replay lacks Idempotent-Replayed: true")
			}
			var page struct{ Patients []patients.Patient }
			c.getJSON(fmt.Sprintf("/patients?after=%d&limit=10", first.ID-1), http.StatusOK, &page)
			n := 0
			for _, q := range page.Patients {
				if q.LastName == "Hamilton" {
					n++
				}
			}
			if n != 1 {
				t.Errorf("got %d patients named Hamilton, want 1", n)
			}
		})

		t.Run("a key reused with another body is refused", func(t *testing.T) {
			c := c.with(t)
			h := http.Header{"Idempotency-Key": {"create-ken"}}
			c.createPatient(patients.Patient{FirstName: "Ken", LastName: "Thompson"}, h)
			resp := c.do(http.MethodPost, "/patients", jsonBody(patients.Patient{FirstName: "Ken", LastName: "Other"}), h)
			c.wantError(resp, http.StatusUnprocessableEntity)
		})

		t.Run("a refused write can be retried with its key", func(t *testing.T) {
			c := c.with(t)
			h := http.Header{"Idempotency-Key": {"bad-then-good"}}
			c.wantError(c.do(http.MethodPut, "/patients/999998", jsonBody(patients.Patient{FirstName: "A", LastName: "B"}), h), http.StatusNotFound)
			if !f.KeepsPrimaryID {
				return
			}
			c.createPatient(patients.Patient{FirstName: "A", LastName: "B"}, http.Header{"X-Strangler-Primary-Id": {"999998"}})
			if resp := c.do(http.MethodPut, "/patients/999998", jsonBody(patients.Patient{FirstName: "A", LastName: "B"}), h); resp.StatusCode != http.StatusOK {
				t.Errorf("retry after the patient exists: got %d, want 200", resp.StatusCode)
			}
		})

		t.Run("concurrent requests with one key apply once", func(t *testing.T) {
			c := c.with(t)
			h := http.Header{"Idempotency-Key": {"race-john"}}
			var wg sync.WaitGroup
			ids := make([]int64, 4)
			for i := range ids {
				wg.Go(func() {
					_, p := c.createPatient(patients.Patient{FirstName: "John", LastName: "Backus"}, h)
					ids[i] = p.ID
				})
			}
			wg.Wait()
			for _, id := range ids[1:] {
				if id != ids[0] {
					t.Errorf("ids %v, want one id", ids)
					break
				}
			}
		})
	}
}

type client struct {
	t    *testing.T
	base string
}

func (c *client) with(t *testing.T) *client { return &client{t: t, base: c.base} }

func (c *client) do(method, path string, body io.Reader, h http.Header) *http.Response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (c *client) createPatient(p patients.Patient, h http.Header) (*http.Response, patients.Patient) {
	c.t.Helper()
	resp := c.do(http.MethodPost, "/patients", jsonBody(p), h)
	var got patients.Patient
	if resp.StatusCode == http.StatusCreated {
		c.decode(resp, &got)
	}
	return resp, got
}

func (c *client) addPhoto(patientID int64, data []byte, h http.Header) patients.Photo {
	c.t.Helper()
	hh := http.Header{"Content-Type": {"image/jpeg"}}
	for k, v := range h {
		hh[k] = v
	}
	resp := c.do(http.MethodPost, fmt.Sprintf("/patients/%d/photos", patientID), bytes.NewReader(data), hh)
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("POST photo: got %d %s, want 201", resp.StatusCode, b)
	}
	var ph patients.Photo
	c.decode(resp, &ph)
	if got, want := resp.Header.Get("Location"), fmt.Sprintf("/photos/%d", ph.ID); got != want {
		c.t.Errorf("Location: got %q, want %q", got, want)
	}
	return ph
}

func (c *client) getJSON(path string, status int, v any) {
	c.t.Helper()
	resp := c.do(http.MethodGet, path, nil, nil)
	if resp.StatusCode != status {
		b, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("GET %s: got %d %s, want %d", path, resp.StatusCode, b, status)
	}
	if v != nil {
		c.decode(resp, v)
	}
}

func (c *client) decode(resp *http.Response, v any) {
	c.t.Helper()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		c.t.Fatalf("%s %s: decoding the answer: %v", resp.Request.Method, resp.Request.URL.Path, err)
	}
}

// wantError checks for the status and a JSON {"error": "…"} body.
func (c *client) wantError(resp *http.Response, status int) {
	c.t.Helper()
	var e struct{ Error string }
	err := json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != status || err != nil || e.Error == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		c.t.Errorf("%s %s: got %d (%v, %q), want %d with a JSON error", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, err, e.Error, status)
	}
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

func equal(a, b patients.Patient) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
