package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

const rejectedPrefix = "rejected/"

// s3Source: the producer's keys are epoch milliseconds, so key order is time
// order. The lister hands keys out in order; fetchers get the bodies C at a
// time; the dispatcher waits for each body in key order, so one widget's
// requests reach their lane in key order however the fetches finish.
type s3Source struct {
	client   *s3.Client
	bucket   string
	fetchers int
}

type fetch struct {
	key  string
	body []byte
	err  error
	done chan struct{}
}

func (s *s3Source) batchLimit() int { return 1000 }

func (s *s3Source) get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func (s *s3Source) run(ctx context.Context, dispatch func(job)) error {
	ordered := make(chan *fetch, s.fetchers)
	work := make(chan *fetch, s.fetchers)
	var fetchers sync.WaitGroup
	for range s.fetchers {
		fetchers.Add(1)
		go func() {
			defer fetchers.Done()
			for f := range work {
				f.body, f.err = s.get(ctx, f.key)
				close(f.done)
			}
		}()
	}
	listErr := make(chan error, 1)
	go func() {
		defer close(ordered)
		defer close(work)
		listErr <- s.list(ctx, func(key string) {
			f := &fetch{key: key, done: make(chan struct{})}
			ordered <- f
			work <- f
		})
	}()
	var fetchErr error
	for f := range ordered {
		<-f.done
		if f.err != nil {
			// Not handed out: it stays in the bucket, and the run fails.
			fetchErr = fmt.Errorf("GetObject %s: %w", f.key, f.err)
			continue
		}
		dispatch(job{r: parseRequest(f.body), body: f.body, ticket: f.key, id: f.key})
	}
	fetchers.Wait()
	if err := <-listErr; err != nil {
		return err
	}
	return fetchErr
}

// list hands out every request key after the last one handed out, a page at a
// time, until a listing from there holds none (keys under rejected/ sort after
// the producer's digits and end a pass).
func (s *s3Source) list(ctx context.Context, each func(string)) error {
	after := ""
	for {
		input := &s3.ListObjectsV2Input{Bucket: &s.bucket}
		if after != "" {
			input.StartAfter = &after
		}
		out, err := s.client.ListObjectsV2(ctx, input)
		if err != nil {
			return fmt.Errorf("ListObjectsV2: %w", err)
		}
		handed := 0
		for _, o := range out.Contents {
			if strings.HasPrefix(*o.Key, rejectedPrefix) {
				break
			}
			each(*o.Key)
			after = *o.Key
			handed++
		}
		if handed == 0 {
			return nil
		}
	}
}

func (s *s3Source) reject(ctx context.Context, j job) error {
	source := url.PathEscape(s.bucket) + "/" + strings.ReplaceAll(url.PathEscape(j.ticket), "%2F", "/")
	_, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &s.bucket,
		Key: aws.String(rejectedPrefix + j.ticket), CopySource: &source})
	return err
}

func (s *s3Source) remove(ctx context.Context, keys []string) error {
	objects := make([]s3types.ObjectIdentifier, len(keys))
	for i := range keys {
		objects[i].Key = &keys[i]
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &s.bucket,
		Delete: &s3types.Delete{Objects: objects, Quiet: aws.Bool(true)}})
	if err != nil {
		return err
	}
	if len(out.Errors) > 0 {
		return fmt.Errorf("DeleteObjects: %d of %d failed, first %s: %s", len(out.Errors), len(keys),
			aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
	}
	return nil
}

// sqsSource: receivers of up to 10 messages each. On a FIFO queue a message
// group's next message is not received while an earlier one is in flight, and
// a batch is handed out in its order, so one widget's requests keep the
// queue's order.
type sqsSource struct {
	client        *sqs.Client
	url           string
	deadLetterURL string
	wait          int32
	maxIdle       time.Duration
	receivers     int
	pending       *atomic.Int64
	lastDelete    *atomic.Int64 // UnixNano
	lastMessage   atomic.Int64  // UnixNano
}

func (s *sqsSource) batchLimit() int { return 10 }

func (s *sqsSource) run(ctx context.Context, dispatch func(job)) error {
	s.lastMessage.Store(time.Now().UnixNano())
	var receivers sync.WaitGroup
	var stop atomic.Bool
	errs := make(chan error, s.receivers)
	for range s.receivers {
		receivers.Add(1)
		go func() {
			defer receivers.Done()
			for !stop.Load() {
				out, err := s.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &s.url,
					MaxNumberOfMessages: 10, WaitTimeSeconds: s.wait})
				if err != nil {
					errs <- fmt.Errorf("ReceiveMessage: %w", err)
					stop.Store(true)
					return
				}
				if len(out.Messages) == 0 {
					// Idle since the last message came or the last went, so a
					// slow batch does not count as time without messages.
					idle := time.Since(time.Unix(0, max(s.lastMessage.Load(), s.lastDelete.Load())))
					if s.pending.Load() == 0 && idle >= s.maxIdle {
						stop.Store(true)
					}
					continue
				}
				s.lastMessage.Store(time.Now().UnixNano())
				for _, m := range out.Messages {
					body := []byte(aws.ToString(m.Body))
					dispatch(job{r: parseRequest(body), body: body, ticket: *m.ReceiptHandle,
						id: aws.ToString(m.MessageId)})
				}
			}
		}()
	}
	receivers.Wait()
	close(errs)
	return <-errs
}

func (s *sqsSource) reject(ctx context.Context, j job) error {
	if s.deadLetterURL == "" {
		return nil
	}
	_, err := s.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &s.deadLetterURL,
		MessageBody: aws.String(string(j.body)), MessageGroupId: aws.String("rejected"),
		MessageDeduplicationId: aws.String(j.id)})
	return err
}

func (s *sqsSource) remove(ctx context.Context, handles []string) error {
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(handles))
	for i := range handles {
		entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)),
			ReceiptHandle: &handles[i]}
	}
	out, err := s.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &s.url,
		Entries: entries})
	if err != nil {
		return err
	}
	if len(out.Failed) > 0 {
		return fmt.Errorf("DeleteMessageBatch: %d of %d failed, first: %s", len(out.Failed),
			len(handles), aws.ToString(out.Failed[0].Message))
	}
	return nil
}
