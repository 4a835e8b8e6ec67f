"""The Merkle log of event digests, persisted as tiles.

Leaf `i` of the log is `SHA-256(0x00 || digest of event i)` (RFC 9162 §2.1). The tree is
stored as tiles of height 8, as in C2SP tlog-tiles: the tile at level L, index N holds the
hashes of the nodes of height 8L numbered 256N to 256N + 255. Any node of any tree size is
then one tile read and at most 127 hashes away, so roots and proofs cost O(log n) reads.

Full tiles never change. The partial right-edge tile of level 0 is not stored at all: it
is at most 255 leaf hashes, derived from the newest events' digests, so an append of one
event writes no tile. The partial right-edge tiles of higher levels are stored and
rewritten as they grow (once every 256 events at most).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from mlprov import merkle
from mlprov.errors import IntegrityError
from mlprov.store.interface import Reader

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileAppender",
    "TileCache",
    "TileFetch",
    "TileReader",
    "memory_tiles",
    "split_hashes",
    "store_tiles",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
_H = merkle.HASH_SIZE
FULL_TILE = TILE_WIDTH * _H

#: Gives the concatenated hashes of tile (level, index), or None when there is none.
TileFetch = Callable[[int, int], bytes | None]


def split_hashes(hashes: bytes | bytearray) -> list[bytes]:
    return [bytes(hashes[i : i + _H]) for i in range(0, len(hashes), _H)]


def _damaged(level: int, index: int, what: str) -> IntegrityError:
    return IntegrityError(
        f"Merkle tile {level}/{index} {what}", "run `mlprov verify` to find what was changed"
    )


def store_tiles(reader: Reader, size: int) -> TileFetch:
    """Tiles from a store; the partial level-0 tile is derived from event digests."""

    def fetch(level: int, index: int) -> bytes | None:
        found = reader.tiles(level, [index]).get(index)
        if found is None and level == 0 and index * TILE_WIDTH < size:
            digests = reader.digests(index * TILE_WIDTH, min(size, (index + 1) * TILE_WIDTH))
            found = b"".join(merkle.leaf_hash(d) for d in digests)
        return found

    return fetch


def memory_tiles(levels: Sequence[bytes | bytearray]) -> TileFetch:
    """Tiles from recomputed levels: `levels[L]` is every node of height 8L, in order."""

    def fetch(level: int, index: int) -> bytes | None:
        if level >= len(levels):
            return None
        return bytes(levels[level][index * FULL_TILE : (index + 1) * FULL_TILE]) or None

    return fetch


class TileCache:
    """Full tiles never change, so their in-memory trees are kept (least recently used out)."""

    def __init__(self, capacity: int = 512) -> None:
        self._trees: OrderedDict[tuple[int, int], merkle.MemoryTree] = OrderedDict()
        self._capacity = capacity

    def get(self, key: tuple[int, int]) -> merkle.MemoryTree | None:
        tree = self._trees.get(key)
        if tree is not None:
            self._trees.move_to_end(key)
        return tree

    def put(self, key: tuple[int, int], tree: merkle.MemoryTree) -> None:
        self._trees[key] = tree
        if len(self._trees) > self._capacity:
            self._trees.popitem(last=False)


class TileReader:
    """Roots and proofs for a tree of `size` leaves, from tiles."""

    def __init__(self, fetch: TileFetch, size: int, cache: TileCache | None = None) -> None:
        self._fetch = fetch
        self._size = size
        self._cache = cache or TileCache()
        self._partial: dict[tuple[int, int], merkle.MemoryTree] = {}

    def _tile(self, level: int, index: int) -> merkle.MemoryTree:
        key = (level, index)
        tree = self._cache.get(key) or self._partial.get(key)
        if tree is not None:
            return tree
        found = self._fetch(level, index)
        if not found or len(found) % _H or len(found) > FULL_TILE:
            raise _damaged(level, index, "is missing or damaged")
        tree = merkle.MemoryTree(split_hashes(found))
        if len(found) == FULL_TILE:
            self._cache.put(key, tree)
        else:
            self._partial[key] = tree
        return tree

    def perfect(self, height: int, index: int) -> bytes:
        level, rest = divmod(height, TILE_HEIGHT)
        first = index << rest
        tile_index, offset = divmod(first, TILE_WIDTH)
        tree = self._tile(level, tile_index)
        if offset + (1 << rest) > tree.size:
            raise _damaged(level, tile_index, "is shorter than the log")
        return tree.perfect(rest, offset >> rest)

    def root(self, size: int | None = None) -> bytes:
        n = self._size if size is None else size
        return merkle.EMPTY_ROOT if n == 0 else merkle.range_root(0, n, self.perfect)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof(index, size, self.perfect)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return merkle.consistency_proof(old_size, new_size, self.perfect)


class TileAppender:
    """Extends the right edge of the tree with new leaves and says which tiles to write."""

    def __init__(self, reader: Reader, size: int) -> None:
        self.size = size
        self._edge: list[bytearray] = []
        self._index: list[int] = []  # tile index of the edge tile at each level
        level = 0
        while level == 0 or (size >> (TILE_HEIGHT * level)) > 0:
            nodes = size >> (TILE_HEIGHT * level)
            index, width = divmod(nodes, TILE_WIDTH)
            hashes = b""
            if width and level == 0:
                digests = reader.digests(index * TILE_WIDTH, size)
                hashes = b"".join(merkle.leaf_hash(d) for d in digests)
            elif width:
                hashes = reader.tiles(level, [index]).get(index, b"")
            if len(hashes) != width * _H:
                raise _damaged(level, index, "does not match the log size")
            self._edge.append(bytearray(hashes))
            self._index.append(index)
            level += 1
        self._dirty: set[int] = set()
        self._flush: list[tuple[int, int, bytes]] = []

    def extend(self, digests: Sequence[bytes]) -> None:
        """Append the leaves for these raw event digests."""
        leaf = merkle.leaf_hash
        for d in digests:
            self._push(0, leaf(d))
        self.size += len(digests)

    def _push(self, level: int, node: bytes) -> None:
        while True:
            if level == len(self._edge):
                self._edge.append(bytearray())
                self._index.append(0)
            edge = self._edge[level]
            edge += node
            if len(edge) < FULL_TILE:
                if level:
                    self._dirty.add(level)
                return
            # A full tile is final: write it, start the next, and carry its root upward.
            self._flush.append((level, self._index[level], bytes(edge)))
            node = merkle.root_of(split_hashes(edge))
            self._edge[level] = bytearray()
            self._index[level] += 1
            self._dirty.discard(level)
            level += 1

    def mark_written(self) -> None:
        """The changed tiles were committed; start collecting changes afresh."""
        self._flush.clear()
        self._dirty.clear()

    def changed(self) -> list[tuple[int, int, bytes]]:
        """The tiles to write: every tile completed, and the grown partial edges above level 0."""
        out = list(self._flush)
        out.extend((lv, self._index[lv], bytes(self._edge[lv])) for lv in sorted(self._dirty))
        return out
