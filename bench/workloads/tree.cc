// A tree-building N-body simulation (Barnes-Hut, in 2-D): every step builds a
// quadtree of freshly allocated nodes over the bodies, sums mass and centre of
// mass bottom-up, computes each body's acceleration by walking the tree
// (cells far enough away count as one mass), moves the bodies and frees the
// whole tree — tens of thousands of small nodes born and dying together each
// step, between stretches of pointer chasing over them. The checksum is over
// the bodies' final positions: the same arithmetic in the same order under
// every allocator, so the same bits.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#include "workload_common.h"

namespace {

constexpr const char* kName = "tree";
constexpr size_t kBodies = 12000;
constexpr uint64_t kStepsPerScale = 6;
constexpr double kTheta = 0.7;  // a cell of width w at distance d is one mass when w / d < theta
constexpr double kSoftening = 1e-4;
constexpr double kDt = 1e-5;
constexpr int kMaxDepth = 40;  // bodies closer than 2^-40 share a leaf

struct Body {
  double x, y, vx, vy, mass;
};

struct Node {
  // A leaf holds one body (body >= 0) or none; an inner node has children.
  double cx, cy, half;  // the square's centre and half width
  double mass = 0, mx = 0, my = 0;
  Node* child[4] = {nullptr, nullptr, nullptr, nullptr};
  int64_t body = -1;
  bool leaf = true;
  Node(double x, double y, double h) : cx(x), cy(y), half(h) {}
};

class Tree {
 public:
  explicit Tree(const std::vector<Body>& bodies) : bodies_(bodies) {
    root_ = New(0.5, 0.5, 0.5);
    for (size_t i = 0; i < bodies.size(); ++i) Insert(root_, static_cast<int64_t>(i), 0);
    Summarise(root_);
  }
  ~Tree() { Delete(root_); }
  Tree(const Tree&) = delete;
  Tree& operator=(const Tree&) = delete;

  void Accelerate(const Body& b, double& ax, double& ay) const {
    ax = ay = 0;
    Walk(root_, b, ax, ay);
  }
  uint64_t nodes() const { return nodes_; }

 private:
  Node* New(double x, double y, double h) {
    ++nodes_;
    return new Node(x, y, h);
  }

  static int Quadrant(const Node* n, const Body& b) {
    return (b.x >= n->cx ? 1 : 0) | (b.y >= n->cy ? 2 : 0);
  }

  Node* Child(Node* n, int q) {
    if (n->child[q] == nullptr) {
      const double h = n->half / 2;
      n->child[q] = New(n->cx + ((q & 1) ? h : -h), n->cy + ((q & 2) ? h : -h), h);
    }
    return n->child[q];
  }

  static void AddMass(Node* n, const Body& b) {
    n->mass += b.mass;
    n->mx += b.mass * b.x;
    n->my += b.mass * b.y;
  }

  void Insert(Node* n, int64_t i, int depth) {
    if (n->leaf) {
      if (n->body < 0) {
        n->body = i;
        return;
      }
      if (depth >= kMaxDepth) {  // (nearly) coincident bodies: one leaf holds their mass
        AddMass(n, bodies_[i]);
        return;
      }
      const int64_t old = n->body;
      n->body = -1;
      n->leaf = false;
      Insert(Child(n, Quadrant(n, bodies_[old])), old, depth + 1);
    }
    Insert(Child(n, Quadrant(n, bodies_[i])), i, depth + 1);
  }

  void Summarise(Node* n) {
    if (n->leaf) {
      if (n->body >= 0) AddMass(n, bodies_[n->body]);
      return;
    }
    for (Node* c : n->child) {
      if (c == nullptr) continue;
      Summarise(c);
      n->mass += c->mass;
      n->mx += c->mx;
      n->my += c->my;
    }
  }

  void Walk(const Node* n, const Body& b, double& ax, double& ay) const {
    if (n->mass == 0) return;
    const double px = n->mx / n->mass, py = n->my / n->mass;
    const double dx = px - b.x, dy = py - b.y;
    const double d2 = dx * dx + dy * dy + kSoftening;
    const double w = 2 * n->half;
    if (n->leaf || w * w < kTheta * kTheta * d2) {
      if (n->leaf && n->body >= 0 && &bodies_[n->body] == &b) return;  // itself
      const double inv = 1 / (d2 * std::sqrt(d2));
      ax += n->mass * dx * inv;
      ay += n->mass * dy * inv;
      return;
    }
    for (const Node* c : n->child) {
      if (c != nullptr) Walk(c, b, ax, ay);
    }
  }

  void Delete(Node* n) {
    for (Node* c : n->child) {
      if (c != nullptr) Delete(c);
    }
    delete n;
  }

  const std::vector<Body>& bodies_;
  Node* root_ = nullptr;
  uint64_t nodes_ = 0;
};

// Keeps a coordinate in [0, 1) by reflecting it (and its velocity) at the walls.
void Reflect(double& x, double& v) {
  if (x < 0) x = -x, v = -v;
  if (x >= 1) x = 2 - x - 1e-12, v = -v;
  if (x < 0 || x >= 1) x = 0.5;
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::ParseArgs(argc, argv, kName);
  bench::Rng rng(0x3b0d1);
  auto unit = [&] { return static_cast<double>(rng.Next() >> 11) * 0x1.0p-53; };
  std::vector<Body> bodies(kBodies);
  for (Body& b : bodies) {
    // Two clusters, so that the tree is deep in places and shallow in others.
    const double cx = unit() < 0.5 ? 0.3 : 0.7;
    b = Body{cx + 0.2 * (unit() - 0.5), 0.5 + 0.4 * (unit() - 0.5), 0, 0, 1.0 / kBodies};
  }
  std::vector<double> ax(kBodies), ay(kBodies);
  uint64_t nodes = 0;
  for (uint64_t step = 0; step < args.scale * kStepsPerScale; ++step) {
    {
      const Tree tree(bodies);
      for (size_t i = 0; i < kBodies; ++i) tree.Accelerate(bodies[i], ax[i], ay[i]);
      nodes += tree.nodes();
    }
    for (size_t i = 0; i < kBodies; ++i) {
      Body& b = bodies[i];
      b.vx += ax[i] * kDt;
      b.vy += ay[i] * kDt;
      b.x += b.vx * kDt;
      b.y += b.vy * kDt;
      Reflect(b.x, b.vx);
      Reflect(b.y, b.vy);
    }
  }
  uint64_t sum = nodes;
  for (const Body& b : bodies) {
    if (!std::isfinite(b.x) || !std::isfinite(b.y)) {
      std::fprintf(stderr, "%s: a body left the simulation (%g, %g)\n", kName, b.x, b.y);
      return 1;
    }
    sum = bench::Mix(sum, std::bit_cast<uint64_t>(b.x));
    sum = bench::Mix(sum, std::bit_cast<uint64_t>(b.y));
  }
  bench::PrintOps(nodes);
  bench::PrintChecksum(sum);
  return 0;
}
