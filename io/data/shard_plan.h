// The per-epoch shard plan: which chunks each rank reads and in which order it uses their images.
//
// Chunks are numbered globally in file order (file 0's chunks first, then file 1's, ...), images
// too (see io/data/dataset.h). For epoch e, on rank r of `world`:
//
//   1. Chunk permutation. All chunks of all files are shuffled by Fisher-Yates driven by Philox
//      stream (rng_purpose::chunk_shuffle, e) under `seed`: for i = C-1 .. 1, j = floor(u_i (i+1))
//      with u_i element i of the stream, swap(perm[i], perm[j]). It depends on (seed, epoch) only,
//      not on the world size.
//   2. Dealing. Permuted chunk k goes to rank k % world, so rank r gets perm[r], perm[r + world],
//      ... in that order.
//   3. Windows. Rank r's chunk list is cut into consecutive windows of `window_chunks` chunks (the
//      last may be shorter). The images of one window are shuffled together by Fisher-Yates driven
//      by Philox stream (rng_purpose::window_shuffle, e * world + r); a window whose first image
//      sits at position s of the rank's (untruncated) order uses elements s, s+1, ... of that
//      stream. Windows are used one after another, so a reader needs at most `window_chunks`
//      chunks in memory at a time.
//   4. Remainder rule. Every rank runs the same number of steps,
//          steps = min over ranks q of floor(n_q / batch),
//      n_q = the images dealt to rank q. Each rank computes it alone (the plan is a pure function
//      of the arguments, so no communication is needed). Rank r uses the first steps * batch
//      images of its order; the rest (positions from steps * batch on) are dropped for this epoch.
//      Because the permutation changes every epoch, different images are dropped each epoch. Per
//      epoch world * steps * batch images are used, each at most once across all ranks.
//
// Errors (std::runtime_error): world larger than the number of chunks (a rank would get nothing),
// or steps == 0 (some rank gets fewer than `batch` images); both say what to change.
#pragma once

#include <cstdint>
#include <vector>

#include "io/data/dataset.h"

namespace distvae {

// One chunk of one file: `count` images starting at global image index `first`.
struct ChunkRef {
  uint32_t file = 0;
  int64_t chunk = 0;  // chunk index inside the file
  int64_t first = 0;  // global index of the chunk's first image
  int64_t count = 0;  // images in the chunk (the file's last chunk may hold fewer)
};

struct RankPlan {
  // The chunks this rank reads this epoch, in dealing order (= the order they are first used),
  // restricted to chunks that supply at least one used image: chunks whose images all fall in the
  // dropped tail are not listed (they need no read).
  std::vector<ChunkRef> chunks;
  // The global image indices this rank uses this epoch, in use order; exactly steps * batch long.
  std::vector<int64_t> order;
  int64_t steps = 0;  // batches per rank this epoch, the same on every rank
};

// The plan of `rank` for `epoch`, as described above. Throws std::runtime_error on bad arguments
// (rank outside [0, world), batch or window_chunks < 1, epoch < 0), world > chunks, or 0 steps.
RankPlan plan_epoch(const DatasetInfo& info, uint64_t seed, int epoch, int rank, int world,
                    int batch, int window_chunks);

// All chunks of the dataset in global chunk order (file by file).
std::vector<ChunkRef> all_chunks(const DatasetInfo& info);

// The dataset cut to its first images: at most max_images, rounded down to whole chunks (at
// least one chunk), so every chunk a plan reads is whole. max_images <= 0: unchanged.
DatasetInfo first_images(const DatasetInfo& info, int64_t max_images);

// Steps 1 and 2 alone: the chunks dealt to `rank` in `epoch`, in dealing order, before the
// remainder rule trims any (for tests and tools). Throws on world > chunks like plan_epoch.
std::vector<ChunkRef> deal_chunks(const DatasetInfo& info, uint64_t seed, int epoch, int rank,
                                  int world);

}  // namespace distvae
