package main

import (
	"encoding/json"
	"testing"
)

// The producer's kinds of invalid request (tests/support/request_generator.hpp)
// and the shapes benchmarks/baseline_consumer.py rejects.
func TestParseRejectsWhatTheBaselineRejects(t *testing.T) {
	for _, body := range []string{
		``, ` `, `{"widgetId":"bad"}`, `[1]`, `null`,
		`{"type":"bad","requestId":"r","widgetId":"w","owner":"Sue Smith"}`,
		`{"type":"create","requestId":"r","widgetId":"w","owner":"R2D2"}`,
		`{"type":"create","requestId":"r","widgetId":`,
		`{"type":"create","requestId":"r","widgetId":"w","owner":"Sue","otherAttributes":[{"name":"color"}]}`,
		`{"type":"create","requestId":"r","widgetId":"w","owner":"Sue","otherAttributes":[null]}`,
		`{"type":"create","requestId":"r","widgetId":"w","owner":"Sue","otherAttributes":{}}`,
		`{"type":"create","requestId":"","widgetId":"w","owner":"Sue"}`,
		`{"type":"create","requestId":"r","widgetId":"w","owner":"Sue","label":5}`,
		`{"type":"create","requestId":"r","widgetId":"w","owner":""}`,
	} {
		if r := parseRequest([]byte(body)); r != nil {
			t.Errorf("%q: parsed as valid", body)
		}
	}
}

func TestCreateKeepsEmptyStringsAndUpdateReadsThemAsRemove(t *testing.T) {
	r := parseRequest([]byte(`{"type":"WidgetCreateRequest","requestId":"r","widgetId":"w1",
		"owner":"Mary Major","label":"","otherAttributes":[{"name":"a","value":""},
		{"name":"b","value":null},{"name":"c","value":"3"}]}`))
	if r == nil || r.Type != "create" {
		t.Fatalf("not a create: %+v", r)
	}
	w := newWidget(r)
	got, _ := json.Marshal(w)
	want := `{"widgetId":"w1","owner":"Mary Major","label":"","description":null,` +
		`"otherAttributes":[{"name":"a","value":""},{"name":"c","value":"3"}]}`
	if string(got) != want {
		t.Errorf("created %s, want %s", got, want)
	}
	if key := s3Key("widgets/", r); key != "widgets/mary-major/w1" {
		t.Errorf("key %s", key)
	}
	u := parseRequest([]byte(`{"type":"update","requestId":"r2","widgetId":"w1","owner":"Mary Major",
		"label":"L","description":"","otherAttributes":[{"name":"c","value":""},
		{"name":"a","value":"1"},{"name":"d","value":"4"}]}`))
	updateWidget(w, u)
	got, _ = json.Marshal(w)
	want = `{"widgetId":"w1","owner":"Mary Major","label":"L","description":null,` +
		`"otherAttributes":[{"name":"a","value":"1"},{"name":"d","value":"4"}]}`
	if string(got) != want {
		t.Errorf("updated %s, want %s", got, want)
	}
}

func TestUpdateItemNamesEachAttributeOnceByItsLastMention(t *testing.T) {
	u := parseRequest([]byte(`{"type":"update","requestId":"r","widgetId":"w","owner":"Sue",
		"description":"","otherAttributes":[{"name":"a","value":"1"},{"name":"a","value":""}]}`))
	in := updateItemInput("t", u)
	if *in.UpdateExpression != "REMOVE #a1, #a2" || in.ExpressionAttributeNames["#a1"] != "description" ||
		in.ExpressionAttributeNames["#a2"] != "a" {
		t.Errorf("expression %q, names %v", *in.UpdateExpression, in.ExpressionAttributeNames)
	}
	empty := updateItemInput("t", parseRequest([]byte(`{"type":"update","requestId":"r",
		"widgetId":"w","owner":"Sue"}`)))
	if *empty.UpdateExpression != "SET #owner = :owner" {
		t.Errorf("an update without changes: %q", *empty.UpdateExpression)
	}
}
