package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// A widget store: found is false when an update or delete met no widget (or,
// for an update, one with another owner): a warning, not an error.
type store interface {
	apply(ctx context.Context, r *request) (found bool, err error)
}

// s3Store keeps each widget as a JSON object under s3Key, as the baseline does:
// create = PutObject, update = GetObject + PutObject, delete = DeleteObject.
type s3Store struct {
	client *s3.Client
	bucket string
	prefix string
}

func (s *s3Store) put(ctx context.Context, key string, w *widget) error {
	body, err := json.Marshal(w)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key,
		Body: bytes.NewReader(body), ContentType: aws.String("application/json")})
	return err
}

func (s *s3Store) apply(ctx context.Context, r *request) (bool, error) {
	key := s3Key(s.prefix, r)
	switch r.Type {
	case "create":
		return true, s.put(ctx, key, newWidget(r))
	case "update":
		out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
		var missing *s3types.NoSuchKey
		if errors.As(err, &missing) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		body, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			return false, err
		}
		var w widget
		if err := json.Unmarshal(body, &w); err != nil {
			return false, fmt.Errorf("widget %s: %w", key, err)
		}
		if w.Owner != r.Owner {
			return false, nil
		}
		if w.OtherAttributes == nil {
			w.OtherAttributes = []attribute{}
		}
		updateWidget(&w, r)
		return true, s.put(ctx, key, &w)
	default:
		_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
		return true, err
	}
}

// dynamoDBStore keeps the baseline's item layout: id (the hash key), owner,
// label and description, and each other attribute as its own top-level string.
// create = PutItem; update = one UpdateItem (SET and REMOVE, on the condition
// that the item exists with this owner), as our consumer does, where the
// baseline reads and writes; delete = DeleteItem, which tells whether the item
// existed.
type dynamoDBStore struct {
	client *dynamodb.Client
	table  string
}

func str(s string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: s} }

func (s *dynamoDBStore) apply(ctx context.Context, r *request) (bool, error) {
	id := map[string]ddbtypes.AttributeValue{"id": str(r.WidgetID)}
	switch r.Type {
	case "create":
		w := newWidget(r)
		item := map[string]ddbtypes.AttributeValue{"id": str(w.WidgetID), "owner": str(w.Owner)}
		if w.Label != nil {
			item["label"] = str(*w.Label)
		}
		if w.Description != nil {
			item["description"] = str(*w.Description)
		}
		for _, a := range w.OtherAttributes {
			item[a.Name] = str(a.Value)
		}
		_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item})
		return true, err
	case "update":
		input := updateItemInput(s.table, r)
		input.Key = id
		_, err := s.client.UpdateItem(ctx, input)
		var failed *ddbtypes.ConditionalCheckFailedException
		if errors.As(err, &failed) {
			return false, nil
		}
		return err == nil, err
	default:
		out, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: id,
			ReturnValues: ddbtypes.ReturnValueAllOld})
		if err != nil {
			return false, err
		}
		return len(out.Attributes) > 0, nil
	}
}

// updateItemInput: the request's changes as one update expression. An
// attribute named twice counts once, its last mention (what applying them in
// turn gives); an update that changes nothing still checks the owner.
func updateItemInput(table string, r *request) *dynamodb.UpdateItemInput {
	names := map[string]string{"#owner": "owner"}
	values := map[string]ddbtypes.AttributeValue{":owner": str(r.Owner)}
	var set, remove []string
	change := func(name string, value *string) {
		placeholder := fmt.Sprintf("#a%d", len(names))
		names[placeholder] = name
		if *value == "" {
			remove = append(remove, placeholder)
		} else {
			values[":"+placeholder[1:]] = str(*value)
			set = append(set, placeholder+" = :"+placeholder[1:])
		}
	}
	if r.Label != nil {
		change("label", r.Label)
	}
	if r.Description != nil {
		change("description", r.Description)
	}
	last := map[string]int{}
	for i, a := range r.Attributes {
		if a.Value != nil {
			last[a.Name] = i
		}
	}
	for i, a := range r.Attributes {
		if a.Value != nil && last[a.Name] == i {
			change(a.Name, a.Value)
		}
	}
	if len(set) == 0 && len(remove) == 0 {
		set = append(set, "#owner = :owner")
	}
	expression := ""
	if len(set) > 0 {
		expression = "SET " + strings.Join(set, ", ")
	}
	if len(remove) > 0 {
		if expression != "" {
			expression += " "
		}
		expression += "REMOVE " + strings.Join(remove, ", ")
	}
	return &dynamodb.UpdateItemInput{TableName: &table, UpdateExpression: &expression,
		ConditionExpression: aws.String("#owner = :owner"), ExpressionAttributeNames: names,
		ExpressionAttributeValues: values}
}
