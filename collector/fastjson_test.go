package collector

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// checkpointAnswers are every /jobs/:id/checkpoints answer in testdata and
// the benchmark's.
func checkpointAnswers(t testing.TB) [][]byte {
	var out [][]byte
	for _, glob := range []string{"testdata/flink-*/jobs_id_checkpoints*.json", "testdata/flink-*/nocheckpointing_jobs_id_checkpoints.json", "testdata/edge/checkpoints_*.json"} {
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	if len(out) < 8 {
		t.Fatalf("only %d checkpoint answers in testdata", len(out))
	}
	return append(out, checkpointsJSON(1000))
}

// sameAsEncodingJSON decodes data both ways: both fail, or both succeed with
// equal results.
func sameAsEncodingJSON(t *testing.T, data []byte) {
	t.Helper()
	var std, fast checkpointsBody
	errStd := json.Unmarshal(data, &std)
	errFast := fast.decodeFast(data)
	if (errStd == nil) != (errFast == nil) {
		t.Fatalf("encoding/json: %v; fast: %v\ninput: %q", errStd, errFast, data)
	}
	if errStd != nil {
		return
	}
	if !reflect.DeepEqual(std, fast) {
		t.Fatalf("results differ\nencoding/json: %+v\nfast:          %+v\ninput: %q", std, fast, data)
	}
}

func TestFastCheckpointsDecoderMatchesEncodingJSON(t *testing.T) {
	for _, b := range checkpointAnswers(t) {
		sameAsEncodingJSON(t, b)
	}
	for _, s := range []string{
		``, `null`, `[]`, `"x"`, `{}`, `{"counts":null}`, `{"counts":"many","history":"long"}`, `{"history":[null,{}]}`,
		`{"history":[{"id":"12","status":"completed","is_savepoint":"yes"}]}`, `{"history":[{"failure_message":7}]}`,
		`{"history":[{"failure_message":"a\nb \u00e9 \ud83d\ude00"}]}`, `{"latest":{"completed":{"id":3}},"latest":{"completed":{"status":"FAILED"}}}`,
		`{"COUNTS":{"Completed":3}}`, `{"counts":{"completed":{"x":1}}}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":"\x01"}`, `{"a":tru}`,
		`{"a":[1,2,]}`, `{"a":1,}`, `{"a":1} x`, `{"history":[{"id":1}]`, `{"history":[{"id":1e400}]}`,
		`{"history":[{"id":1,"status":"COMPLETED"}],"history":[{"id":2}]}`, `{"history":[{"id":1}],"history":null}`,
		`{"history":[{"ſtatus":"COMPLETED","ID":4,"Is_Savepoint":true,"K":1}]}`, "{\"history\":[{\"failure_message\":\"\xff\"}]}",
	} {
		sameAsEncodingJSON(t, []byte(s))
	}
}

func FuzzFastCheckpointsDecoder(f *testing.F) {
	for _, b := range checkpointAnswers(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"history":[{"id":1,"status":"COMPLETED","failure_message":"x"}],"counts":{"failed":"2"}}`))
	f.Fuzz(func(t *testing.T, data []byte) { sameAsEncodingJSON(t, data) })
}
