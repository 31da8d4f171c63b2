package main

import (
	"encoding/json"
	"regexp"
	"strings"
)

// The request schema and the widget semantics of DESIGN.md, as
// benchmarks/baseline_consumer.py has them: a create stores the request's data
// as given ("" included, null values left out), an update changes only what it
// mentions and reads "" as "remove".

var ownerPattern = regexp.MustCompile(`^[A-Za-z ]+$`)

var requestTypes = map[string]string{
	"create": "create", "WidgetCreateRequest": "create",
	"update": "update", "WidgetUpdateRequest": "update",
	"delete": "delete", "WidgetDeleteRequest": "delete",
}

// A value of otherAttributes: RawMessage tells a missing "value" (invalid)
// from a null one (left alone).
type rawAttribute struct {
	Name  *string         `json:"name"`
	Value json.RawMessage `json:"value"`
}

type rawRequest struct {
	Type            *string         `json:"type"`
	RequestID       *string         `json:"requestId"`
	WidgetID        *string         `json:"widgetId"`
	Owner           *string         `json:"owner"`
	Label           *string         `json:"label"`
	Description     *string         `json:"description"`
	OtherAttributes []*rawAttribute `json:"otherAttributes"`
}

type attribute struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// An attribute of a request: Value nil when the request gave null.
type requestAttribute struct {
	Name  string
	Value *string
}

type request struct {
	Type        string
	WidgetID    string
	Owner       string
	Label       *string
	Description *string
	Attributes  []requestAttribute
}

// The stored widget: the S3 store's JSON document, field for field.
type widget struct {
	WidgetID        string      `json:"widgetId"`
	Owner           string      `json:"owner"`
	Label           *string     `json:"label"`
	Description     *string     `json:"description"`
	OtherAttributes []attribute `json:"otherAttributes"`
}

// parseRequest returns the request, or nil when it is invalid. A struct with
// pointer fields makes encoding/json check every type (a number where a string
// belongs fails the decode), so only presence and the owner remain.
func parseRequest(body []byte) *request {
	var raw rawRequest
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil
	}
	if raw.Type == nil || raw.RequestID == nil || raw.WidgetID == nil || raw.Owner == nil {
		return nil
	}
	kind, ok := requestTypes[*raw.Type]
	if !ok || *raw.RequestID == "" || *raw.WidgetID == "" || !ownerPattern.MatchString(*raw.Owner) {
		return nil
	}
	r := &request{Type: kind, WidgetID: *raw.WidgetID, Owner: *raw.Owner, Label: raw.Label,
		Description: raw.Description}
	for _, a := range raw.OtherAttributes {
		if a == nil || a.Name == nil || *a.Name == "" || len(a.Value) == 0 {
			return nil
		}
		var value *string
		if err := json.Unmarshal(a.Value, &value); err != nil {
			return nil
		}
		r.Attributes = append(r.Attributes, requestAttribute{Name: *a.Name, Value: value})
	}
	return r
}

func newWidget(r *request) *widget {
	w := &widget{WidgetID: r.WidgetID, Owner: r.Owner, Label: r.Label, Description: r.Description,
		OtherAttributes: []attribute{}}
	for _, a := range r.Attributes {
		if a.Value != nil {
			w.OtherAttributes = append(w.OtherAttributes, attribute{a.Name, *a.Value})
		}
	}
	return w
}

func updateField(field **string, value *string) {
	if value == nil {
		return
	}
	if *value == "" {
		*field = nil
	} else {
		v := *value
		*field = &v
	}
}

func updateWidget(w *widget, r *request) {
	updateField(&w.Label, r.Label)
	updateField(&w.Description, r.Description)
	for _, a := range r.Attributes {
		if a.Value == nil {
			continue
		}
		index := -1
		for i, old := range w.OtherAttributes {
			if old.Name == a.Name {
				index = i
				break
			}
		}
		switch {
		case *a.Value == "":
			if index >= 0 {
				w.OtherAttributes = append(w.OtherAttributes[:index], w.OtherAttributes[index+1:]...)
			}
		case index < 0:
			w.OtherAttributes = append(w.OtherAttributes, attribute{a.Name, *a.Value})
		default:
			w.OtherAttributes[index].Value = *a.Value
		}
	}
}

// s3Key is the store's layout: {prefix}{owner, lowercased, spaces as -}/{widgetId}.
func s3Key(prefix string, r *request) string {
	return prefix + strings.ReplaceAll(strings.ToLower(r.Owner), " ", "-") + "/" + r.WidgetID
}
