package testbed

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Versions of what `scripts/tools.sh crds flinkk8s` fetches (the same
// variables override both).
var (
	PrometheusOperatorVersion = envOr("PROMETHEUS_OPERATOR_VERSION", "v0.85.0")
	CertManagerVersion        = envOr("CERT_MANAGER_VERSION", "v1.21.2")
	// FlinkOperatorVersion is a Flink Kubernetes Operator whose
	// FlinkDeployment CRD has container-level restartPolicy (>= 1.9.0);
	// FlinkOperatorVersionBefore19 one whose CRD does not.
	FlinkOperatorVersion         = "1.10.0"
	FlinkOperatorVersionBefore19 = "1.7.0"
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// ModuleDir is a Go module's directory in the module cache (`go mod
// download`, a no-op when it is there already).
func ModuleDir(module, version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &m); err != nil || jerr != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %v %s (run `make tools`)", module, version, err, m.Error)
	}
	return m.Dir, nil
}

// PrometheusOperatorCRDs are the PodMonitor and PrometheusRule CRDs of
// prometheus-operator, from its module's example/prometheus-operator-crd/.
func PrometheusOperatorCRDs() ([]byte, error) {
	dir, err := ModuleDir("github.com/prometheus-operator/prometheus-operator", PrometheusOperatorVersion)
	if err != nil {
		return nil, err
	}
	return catFiles(filepath.Join(dir, "example", "prometheus-operator-crd"),
		"monitoring.coreos.com_podmonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml")
}

// CertManagerCRDs are cert-manager's Certificate and Issuer CRDs, from its
// module's deploy/crds/.
func CertManagerCRDs() ([]byte, error) {
	dir, err := ModuleDir("github.com/cert-manager/cert-manager", CertManagerVersion)
	if err != nil {
		return nil, err
	}
	return catFiles(filepath.Join(dir, "deploy", "crds"),
		"cert-manager.io_certificates.yaml", "cert-manager.io_issuers.yaml", "cert-manager.io_clusterissuers.yaml")
}

func catFiles(dir string, names ...string) ([]byte, error) {
	var b bytes.Buffer
	for _, n := range names {
		raw, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		b.WriteString("\n---\n")
		b.Write(raw)
	}
	return b.Bytes(), nil
}

// FlinkKubernetesVersion is the org.apache.flink:flink-kubernetes the
// Kubernetes tests deploy with: the newest 1.20 patch the Maven mirror here
// serves (it has no 1.20.5), run on the test bed's Flink of the same minor
// line. The Flink Kubernetes Operator, too, deploys with the Flink client it
// bundles, not the cluster's patch release.
var FlinkKubernetesVersion = envOr("FLINK_KUBERNETES_VERSION", "1.20.1")

// FlinkKubernetesDir holds the jars of `scripts/tools.sh flinkk8s`.
func FlinkKubernetesDir() string { return filepath.Join(CacheDir(), "flink-kubernetes") }

// FlinkKubernetesClasspath is a Java classpath for Flink's native Kubernetes
// code: flink-kubernetes and the lib/ of the test bed Flink of its minor
// line (FLINK_VERSION when it is of that line, else the one
// testbed/flink-versions.txt lists).
func FlinkKubernetesClasspath() (string, error) {
	jar, err := cachedFile(filepath.Join(FlinkKubernetesDir(), "flink-kubernetes-"+FlinkKubernetesVersion+".jar"))
	if err != nil {
		return "", err
	}
	minor := func(v string) string {
		p := strings.SplitN(v, ".", 3)
		return strings.Join(p[:min(2, len(p))], ".")
	}
	flink := ""
	for _, v := range append([]string{FlinkVersion()}, versionsWith("all")...) {
		if minor(v) == minor(FlinkKubernetesVersion) {
			flink = v
			break
		}
	}
	if flink == "" {
		return "", fmt.Errorf("no test bed Flink %s.x for flink-kubernetes %s", minor(FlinkKubernetesVersion), FlinkKubernetesVersion)
	}
	lib := filepath.Join(FlinkHome(flink), "lib")
	if _, err := os.Stat(lib); err != nil {
		return "", fmt.Errorf("Flink %s is not installed (%v): run `make tools`", flink, err)
	}
	return lib + "/*:" + jar, nil
}

// FlinkDeploymentCRD is the Flink Kubernetes Operator's FlinkDeployment CRD,
// as its API jar on Maven Central carries it.
func FlinkDeploymentCRD(operatorVersion string) ([]byte, error) {
	jar, err := cachedFile(filepath.Join(FlinkKubernetesDir(), "flink-kubernetes-operator-api-"+operatorVersion+".jar"))
	if err != nil {
		return nil, err
	}
	z, err := zip.OpenReader(jar)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	f, err := z.Open("META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", jar, err)
	}
	defer f.Close()
	return io.ReadAll(f)
}

func cachedFile(path string) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s is missing: run `make tools` (or `scripts/tools.sh flinkk8s`)", path)
	}
	return path, nil
}
