// The Go peer: a widget consumer written with the AWS SDK for Go v2 the way a
// performance-minded Go user would write one, for benchmarks/drain to run
// beside ours, the boto3 baseline and the limit client (BENCHMARKS.md).
//
//	go_peer (--request-bucket B | --request-queue Q) (--widget-bucket B | --table T)
//	        [--concurrency C] [--max-idle MS] [--queue-wait S] [--dead-letter-queue Q]
//	        [--receivers R] [--sdk-idle-pool]
//
// One client per service, shared by every goroutine; the SDK's defaults apart
// from the region, the endpoints (AWS_ENDPOINT_URL_S3/_SQS/_DYNAMODB, S3 path
// style when one is set) and the HTTP client's idle-connection pool, raised
// to the concurrency (the SDK keeps 10 idle connections per host, so above 10
// goroutines on one host most calls would open a new connection;
// --sdk-idle-pool keeps the SDK's pool, to measure what that costs).
// Credentials come from the SDK's default chain (the environment first).
//
// C lanes, one goroutine each; a request goes to lane hash(widgetId) % C, so
// one widget's requests are applied in source order and different widgets in
// parallel. S3 source: list the keys in order (oldest first), fetch up to C
// bodies at a time, hand them to their lanes in key order; until a listing
// past the last key handed out holds no request. SQS source (FIFO): receivers
// of up to 10 messages each; until no message came for --max-idle ms and none
// is in flight. A request leaves its source (DeleteObjects / DeleteMessageBatch,
// batched by whatever is waiting) once the store has it. Invalid requests are
// logged and moved aside, as ours does: copied under rejected/ in the request
// bucket, or sent to --dead-letter-queue.
//
// Prints one JSON line: {"requests": N, "invalid": I, "failed": F, "seconds": S},
// seconds from the first call to the last request's delete. Exit status 1 when a
// request failed (left in its source) or a call to the source failed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// One request on its way through a lane: r is nil when it is invalid.
type job struct {
	r      *request
	body   []byte
	ticket string // the S3 key or the SQS receipt handle
	id     string // the S3 key or the SQS message id, for logs and dead letters
}

type counts struct {
	requests, invalid, failed atomic.Int64
	lastDelete                atomic.Int64 // UnixNano of the last delete's end
}

type source interface {
	run(ctx context.Context, dispatch func(job)) error
	reject(ctx context.Context, j job) error // move an invalid request aside
	remove(ctx context.Context, tickets []string) error
	batchLimit() int
}

type consumer struct {
	src       source
	dst       store
	lanes     []chan job
	deletes   chan string
	inFlight  sync.WaitGroup
	pending   atomic.Int64 // dispatched, not yet deleted (the SQS stop condition)
	counts    counts
	lanesDone sync.WaitGroup
	deleters  sync.WaitGroup
}

func laneOf(widgetID string, lanes int) int {
	h := fnv.New32a()
	h.Write([]byte(widgetID))
	return int(h.Sum32() % uint32(lanes))
}

func (c *consumer) dispatch(j job) {
	c.inFlight.Add(1)
	c.pending.Add(1)
	key := j.id
	if j.r != nil {
		key = j.r.WidgetID
	}
	c.lanes[laneOf(key, len(c.lanes))] <- j
}

func (c *consumer) lane(ctx context.Context, jobs <-chan job) {
	defer c.lanesDone.Done()
	for j := range jobs {
		var err error
		if j.r == nil {
			c.counts.invalid.Add(1)
			fmt.Fprintf(os.Stderr, "go_peer: invalid request %s skipped: %.60q\n", j.id, j.body)
			err = c.src.reject(ctx, j)
		} else {
			var found bool
			found, err = c.dst.apply(ctx, j.r)
			if err == nil && !found {
				fmt.Fprintf(os.Stderr, "go_peer: widget %s not found\n", j.r.WidgetID)
			}
		}
		if err != nil {
			// Left in its source, as a request whose outcome is not durable must be.
			fmt.Fprintf(os.Stderr, "go_peer: request %s failed: %v\n", j.id, err)
			c.counts.failed.Add(1)
			c.pending.Add(-1)
			c.inFlight.Done()
			continue
		}
		c.deletes <- j.ticket
	}
}

// deleter sends what is waiting in one batch call, so deletes batch under load
// and go out at once when the drain is slow.
func (c *consumer) deleter(ctx context.Context) {
	defer c.deleters.Done()
	limit := c.src.batchLimit()
	for ticket := range c.deletes {
		batch := []string{ticket}
	gather:
		for len(batch) < limit {
			select {
			case t, ok := <-c.deletes:
				if !ok {
					break gather
				}
				batch = append(batch, t)
			default:
				break gather
			}
		}
		if err := c.src.remove(ctx, batch); err != nil {
			fmt.Fprintf(os.Stderr, "go_peer: delete of %d requests failed: %v\n", len(batch), err)
			c.counts.failed.Add(int64(len(batch)))
		} else {
			c.counts.requests.Add(int64(len(batch)))
			c.counts.lastDelete.Store(time.Now().UnixNano())
		}
		c.pending.Add(-int64(len(batch)))
		for range batch {
			c.inFlight.Done()
		}
	}
}

func endpoint(service string) *string {
	if url := os.Getenv("AWS_ENDPOINT_URL_" + service); url != "" {
		return &url
	}
	if url := os.Getenv("AWS_ENDPOINT_URL"); url != "" {
		return &url
	}
	return nil
}

func main() {
	requestBucket := flag.String("request-bucket", "", "S3 bucket of requests")
	requestQueue := flag.String("request-queue", "", "SQS FIFO queue of requests (name or URL)")
	widgetBucket := flag.String("widget-bucket", "", "S3 bucket of widgets")
	table := flag.String("table", "", "DynamoDB table of widgets")
	concurrency := flag.Int("concurrency", 16, "lanes (goroutines applying requests)")
	maxIdle := flag.Int("max-idle", 5000, "SQS: stop after this many ms without a message")
	queueWait := flag.Int("queue-wait", 1, "SQS: ReceiveMessage WaitTimeSeconds")
	receivers := flag.Int("receivers", 0, "SQS: receives in flight (0: C/10, 1 to 8)")
	deadLetter := flag.String("dead-letter-queue", "", "SQS: where invalid requests go")
	sdkIdlePool := flag.Bool("sdk-idle-pool", false, "keep the SDK's idle pool (10 per host)")
	flag.Parse()
	if (*requestBucket == "") == (*requestQueue == "") || (*widgetBucket == "") == (*table == "") ||
		*concurrency < 1 {
		fmt.Fprintln(os.Stderr, "usage: go_peer (--request-bucket B | --request-queue Q) "+
			"(--widget-bucket B | --table T) [--concurrency C]")
		os.Exit(2)
	}
	if err := run(*requestBucket, *requestQueue, *widgetBucket, *table, *concurrency, *maxIdle,
		*queueWait, *receivers, *deadLetter, *sdkIdlePool); err != nil {
		fmt.Fprintf(os.Stderr, "go_peer: %v\n", err)
		os.Exit(1)
	}
}

func run(requestBucket, requestQueue, widgetBucket, table string, lanes, maxIdle, queueWait,
	receivers int, deadLetter string, sdkIdlePool bool) error {
	ctx := context.Background()
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	// The SDK's transport, its idle pool raised so that every goroutine's
	// connection stays open between calls (one pool serves every host).
	// (lanes + 64: the fetchers, receivers and deleters call too.)
	options := []func(*config.LoadOptions) error{config.WithRegion(region)}
	if !sdkIdlePool {
		options = append(options, config.WithHTTPClient(awshttp.NewBuildableClient().
			WithTransportOptions(func(t *http.Transport) {
				t.MaxIdleConnsPerHost = lanes + 64
				t.MaxIdleConns = 3 * (lanes + 64)
			})))
	}
	cfg, err := config.LoadDefaultConfig(ctx, options...)
	if err != nil {
		return err
	}
	var s3Client *s3.Client
	if requestBucket != "" || widgetBucket != "" {
		s3Client = s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.BaseEndpoint = endpoint("S3")
			o.UsePathStyle = o.BaseEndpoint != nil
		})
	}
	c := &consumer{lanes: make([]chan job, lanes), deletes: make(chan string, lanes+64)}
	deleters := 1
	start := time.Now()
	if requestBucket != "" {
		c.src = &s3Source{client: s3Client, bucket: requestBucket, fetchers: lanes}
		deleters = min(max(lanes/64, 1), 4)
	} else {
		sqsClient := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = endpoint("SQS") })
		src := &sqsSource{client: sqsClient, wait: int32(queueWait), maxIdle: time.Duration(maxIdle) *
			time.Millisecond, pending: &c.pending, lastDelete: &c.counts.lastDelete}
		if src.url, err = queueURL(ctx, sqsClient, requestQueue); err != nil {
			return err
		}
		if deadLetter != "" {
			if src.deadLetterURL, err = queueURL(ctx, sqsClient, deadLetter); err != nil {
				return err
			}
		}
		src.receivers = receivers
		if src.receivers == 0 {
			src.receivers = min(max(lanes/10, 1), 8)
		}
		c.src = src
		deleters = min(max(lanes/10, 1), 16)
	}
	if widgetBucket != "" {
		c.dst = &s3Store{client: s3Client, bucket: widgetBucket, prefix: "widgets/"}
	} else {
		c.dst = &dynamoDBStore{client: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			o.BaseEndpoint = endpoint("DYNAMODB")
		}), table: table}
	}
	for i := range c.lanes {
		c.lanes[i] = make(chan job, 8)
		c.lanesDone.Add(1)
		go c.lane(ctx, c.lanes[i])
	}
	for range deleters {
		c.deleters.Add(1)
		go c.deleter(ctx)
	}
	sourceErr := c.src.run(ctx, c.dispatch)
	c.inFlight.Wait()
	for _, l := range c.lanes {
		close(l)
	}
	c.lanesDone.Wait()
	close(c.deletes)
	c.deleters.Wait()
	end := time.Now()
	if last := c.counts.lastDelete.Load(); last != 0 {
		end = time.Unix(0, last)
	}
	out, _ := json.Marshal(map[string]any{"requests": c.counts.requests.Load(),
		"invalid": c.counts.invalid.Load(), "failed": c.counts.failed.Load(),
		"seconds": float64(end.Sub(start).Milliseconds()) / 1000})
	fmt.Println(string(out))
	if sourceErr != nil {
		return sourceErr
	}
	if failed := c.counts.failed.Load(); failed > 0 {
		return fmt.Errorf("%d requests failed", failed)
	}
	return nil
}

func queueURL(ctx context.Context, client *sqs.Client, queue string) (string, error) {
	if len(queue) > 4 && queue[:4] == "http" {
		return queue, nil
	}
	out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(queue)})
	if err != nil {
		return "", err
	}
	return *out.QueueUrl, nil
}
