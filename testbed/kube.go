package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ServiceClusterIPRange is the test bed's Service range. It is inside
// 127.0.0.0/8 so that nothing the API server is asked to reach through a
// Service (a webhook, an aggregated API) can lead it off loopback.
const ServiceClusterIPRange = "127.77.0.0/24"

// Kube is a real Kubernetes control plane on loopback ports: etcd,
// kube-apiserver (token authentication, RBAC, the default admission plugins
// including PodSecurity and the admission webhooks) and
// kube-controller-manager (Deployments → ReplicaSets → Pods, service
// accounts, garbage collection). There is no kubelet and no scheduler: pods
// are admitted, validated and stored, never run.
type Kube struct {
	// Dir holds the PKI, the token file, etcd's data, the kubeconfig and the
	// processes' output (etcd.out, kube-apiserver.out,
	// kube-controller-manager.out).
	Dir string
	// URL is the API server, https://127.0.0.1:<port>.
	URL string
	// Version is the server's git version, e.g. v1.36.3.
	Version string
	// Started is how long StartKube took until the API server was ready and
	// the controller manager served the default ServiceAccount.
	Started time.Duration

	etcd, apiserver, controllers *Proc
	kubeconfig                   string
	config                       *rest.Config
	client                       kubernetes.Interface
	dynamic                      dynamic.Interface
	mapper                       *restmapper.DeferredDiscoveryRESTMapper
}

// StartKube starts etcd, kube-apiserver and kube-controller-manager (built
// by `scripts/tools.sh etcd kube`) with their state under dir, and waits
// until they serve. Stop them with Stop.
func StartKube(ctx context.Context, dir string) (k *Kube, err error) {
	t0 := time.Now()
	bins := map[string]string{}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if bins[name], err = Tool(name); err != nil {
			return nil, fmt.Errorf("%w (or `scripts/tools.sh etcd kube`)", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	k = &Kube{Dir: dir, kubeconfig: filepath.Join(dir, "kubeconfig")}
	defer func() {
		if err != nil {
			k.Stop()
		}
	}()
	pki := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return nil, err
	}
	ca, err := NewCA("flink-agent-testbed-kubernetes-ca")
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(pki, "ca.crt")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		return nil, err
	}
	certFile, keyFile, err := ca.IssueFiles(pki, "apiserver", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
	if err != nil {
		return nil, err
	}
	saKey, saPub := filepath.Join(pki, "sa.key"), filepath.Join(pki, "sa.pub")
	if err := writeKeyPair(saKey, saPub); err != nil {
		return nil, err
	}
	token := randomToken()
	tokens := filepath.Join(pki, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+`,testbed-admin,testbed-admin,"system:masters"`+"\n"), 0o600); err != nil {
		return nil, err
	}

	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = FreePort(); err != nil {
			return nil, err
		}
	}
	etcdURL, peerURL := "http://"+Addr(ports[0]), "http://"+Addr(ports[1])
	k.etcd, err = StartProc("etcd", dir, nil, bins["etcd"],
		"--name=testbed", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=testbed="+peerURL,
		"--listen-metrics-urls=", // no third port
		"--unsafe-no-fsync",      // a test's data need not survive a power cut
		"--log-level=warn")
	if err != nil {
		return nil, err
	}
	plain := &http.Client{Timeout: 2 * time.Second}
	if err := WaitFor(ctx, k.etcd, 100*time.Millisecond, func(ctx context.Context) error {
		return httpOK(ctx, plain, etcdURL+"/health", "")
	}); err != nil {
		return nil, err
	}

	k.URL = "https://" + Addr(ports[2])
	k.apiserver, err = StartProc("kube-apiserver", dir, nil, bins["kube-apiserver"],
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[2]),
		"--tls-cert-file="+certFile, "--tls-private-key-file="+keyFile,
		"--cert-dir="+pki,
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saPub, "--service-account-signing-key-file="+saKey,
		"--api-audiences=https://kubernetes.default.svc",
		"--service-cluster-ip-range="+ServiceClusterIPRange,
		// The "kubernetes" Service would list 127.0.0.1 as its endpoint,
		// which Endpoints validation refuses; nothing here needs it.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--enable-priority-and-fairness=false",
		"--v=1")
	if err != nil {
		return nil, err
	}
	if err := k.writeKubeconfig(ca.PEM, token); err != nil {
		return nil, err
	}
	if err := k.connect(); err != nil {
		return nil, err
	}
	if err := WaitFor(ctx, k.apiserver, 200*time.Millisecond, func(ctx context.Context) error {
		return k.healthy(ctx, "/readyz")
	}); err != nil {
		return nil, err
	}
	if v, err := k.client.Discovery().ServerVersion(); err == nil {
		k.Version = v.GitVersion
	}

	k.controllers, err = StartProc("kube-controller-manager", dir, nil, bins["kube-controller-manager"],
		"--kubeconfig="+k.kubeconfig,
		"--authentication-kubeconfig="+k.kubeconfig, "--authorization-kubeconfig="+k.kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[3]),
		"--cert-dir="+filepath.Join(dir, "kcm"),
		"--leader-elect=false",
		"--controllers=serviceaccount-controller,serviceaccount-token-controller,deployment-controller,replicaset-controller,"+
			"garbage-collector-controller,namespace-controller,root-ca-certificate-publisher-controller",
		"--service-account-private-key-file="+saKey, "--root-ca-file="+caFile,
		"--v=1")
	if err != nil {
		return nil, err
	}
	// The ServiceAccount admission plugin refuses pods in a namespace
	// without its "default" ServiceAccount: the controller manager is ready
	// once it has made one.
	if err := k.waitDefaultServiceAccount(ctx, metav1.NamespaceDefault); err != nil {
		return nil, err
	}
	k.Started = time.Since(t0)
	return k, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func httpOK(ctx context.Context, c *http.Client, url, bearer string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

func (k *Kube) healthy(ctx context.Context, path string) error {
	body, err := k.client.Discovery().RESTClient().Get().AbsPath(path).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("%s: %v: %s", path, err, body)
	}
	return nil
}

func (k *Kube) writeKubeconfig(caPEM []byte, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testbed"] = &clientcmdapi.Cluster{Server: k.URL, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["testbed-admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["testbed"] = &clientcmdapi.Context{Cluster: "testbed", AuthInfo: "testbed-admin", Namespace: metav1.NamespaceDefault}
	cfg.CurrentContext = "testbed"
	return clientcmd.WriteToFile(*cfg, k.kubeconfig)
}

func (k *Kube) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", k.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 100, 200
	// Deprecation warnings (v1 Endpoints when listing everything) are noise
	// in test output.
	cfg.WarningHandler = rest.NoWarnings{}
	cfg.Timeout = 30 * time.Second
	if k.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if k.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	k.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	k.config = cfg
	return nil
}

func (k *Kube) waitDefaultServiceAccount(ctx context.Context, namespace string) error {
	return WaitFor(ctx, k.controllers, 100*time.Millisecond, func(ctx context.Context) error {
		_, err := k.client.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// Kubeconfig is the path of a kubeconfig for the cluster admin (helm
// --kubeconfig, KUBECONFIG, Flink's kubernetes.config.file).
func (k *Kube) Kubeconfig() string { return k.kubeconfig }

// Config is the admin's client configuration (a copy).
func (k *Kube) Config() *rest.Config { return rest.CopyConfig(k.config) }

// Client is a typed client as the cluster admin.
func (k *Kube) Client() kubernetes.Interface { return k.client }

// Dynamic is a dynamic client as the cluster admin, for custom resources.
func (k *Kube) Dynamic() dynamic.Interface { return k.dynamic }

// CreateNamespace creates a namespace with labels (e.g.
// pod-security.kubernetes.io/enforce: restricted) and waits until pods can
// be created in it (its default ServiceAccount exists).
func (k *Kube) CreateNamespace(ctx context.Context, name string, labels map[string]string) error {
	_, err := k.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return k.waitDefaultServiceAccount(ctx, name)
}

// Apply server-side-applies every object of a multi-document YAML or JSON
// stream (field manager "testbed"), in order. Namespaced objects without a
// namespace go to namespace. A CustomResourceDefinition is waited for until
// it is established, so objects of its kind can follow.
func (k *Kube) Apply(ctx context.Context, namespace string, manifests []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	var applied []*unstructured.Unstructured
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return applied, nil
			}
			return applied, err
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		out, err := k.applyOne(ctx, namespace, u)
		if err != nil {
			return applied, fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		applied = append(applied, out)
	}
}

func (k *Kube) applyOne(ctx context.Context, namespace string, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := k.Resource(u.GroupVersionKind().GroupVersion().String(), u.GetKind(), namespace)
	if err != nil {
		return nil, err
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	force := true
	out, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "testbed", Force: &force})
	if err != nil {
		return nil, err
	}
	if u.GetKind() == "CustomResourceDefinition" {
		err = WaitFor(ctx, nil, 100*time.Millisecond, func(ctx context.Context) error {
			crd, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !established(crd) {
				return fmt.Errorf("CRD %s not established", u.GetName())
			}
			// Established says the API server serves the kind; clients
			// (helm, a RESTMapper) find it through discovery, which the
			// API server updates on its own schedule.
			return k.discovered(crd)
		})
		k.mapper.Reset()
	}
	return out, err
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// discovered reports whether the server's discovery lists the CRD's
// resource in every version it serves.
func (k *Kube) discovered(crd *unstructured.Unstructured) error {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	_, lists, err := k.client.Discovery().ServerGroupsAndResources()
	if err != nil && len(lists) == 0 {
		return err
	}
	listed := map[string]bool{}
	for _, l := range lists {
		for _, r := range l.APIResources {
			listed[l.GroupVersion+"/"+r.Name] = true
		}
	}
	for _, v := range versions {
		m, _ := v.(map[string]any)
		if served, _ := m["served"].(bool); !served {
			continue
		}
		if gvr := fmt.Sprintf("%s/%v/%s", group, m["name"], plural); !listed[gvr] {
			return fmt.Errorf("%s not in discovery yet", gvr)
		}
	}
	return nil
}

// Resource is the dynamic client for a kind (apiVersion "v1", "apps/v1",
// "monitoring.coreos.com/v1", …), in namespace when the kind is namespaced.
func (k *Kube) Resource(apiVersion, kind, namespace string) (dynamic.ResourceInterface, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, err
	}
	m, err := k.mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	if meta.IsNoMatchError(err) {
		// A kind that appeared since discovery was cached (a new CRD).
		k.mapper.Reset()
		m, err = k.mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	}
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if namespace == "" {
			namespace = metav1.NamespaceDefault
		}
		return k.dynamic.Resource(m.Resource).Namespace(namespace), nil
	}
	return k.dynamic.Resource(m.Resource), nil
}

// Events returns the namespace's events as "Kind/name: reason: message"
// lines, for failure messages (a ReplicaSet's FailedCreate says why a pod
// was refused).
func (k *Kube) Events(ctx context.Context, namespace string) string {
	list, err := k.client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range list.Items {
		fmt.Fprintf(&b, "%s/%s: %s: %s\n", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
	}
	return b.String()
}

// Stop stops the controller manager, the API server, then etcd (the API
// server keeps retrying a stopped etcd for many seconds).
func (k *Kube) Stop() {
	for _, p := range []*Proc{k.controllers, k.apiserver, k.etcd} {
		if p != nil {
			_ = p.Stop(10 * time.Second)
		}
	}
}

// KubeBuildTimes says how long `scripts/tools.sh` took to build etcd and
// kube-apiserver + kube-controller-manager on this machine (recorded when
// it built them), for the tests' output.
func KubeBuildTimes() string {
	var parts []string
	for _, s := range []struct{ file, what string }{{"etcd", "etcd"}, {"kube", "kube-apiserver + kube-controller-manager"}} {
		raw, err := os.ReadFile(filepath.Join(CacheDir(), "bin", "."+s.file+".buildtime"))
		secs, perr := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || perr != nil {
			parts = append(parts, s.what+" build time not recorded")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s built in %s", s.what, time.Duration(secs)*time.Second))
	}
	return strings.Join(parts, ", ")
}
