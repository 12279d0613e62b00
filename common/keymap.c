/* keymap.c - (symbol, interval) -> dense index, linear probing. */
#include "keymap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KEY_SYM_MAX 32

struct key {
	char s[KEY_SYM_MAX]; /* NUL-terminated */
	int32_t iv;
};

struct mdb_keymap {
	int32_t *slot;	 /* index + 1 of the key in this bucket; 0: empty */
	uint32_t mask;	 /* buckets - 1 */
	struct key *key; /* by index */
	int n, cap;
};

/* FNV-1a over s and iv, folded. */
static uint64_t keymap_hash(const char *s, int32_t iv)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	for (int i = 0; i < 4; i++)
		h = (h ^ (uint8_t)((uint32_t)iv >> (8 * i))) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

mdb_keymap *keymap_new(void)
{
	mdb_keymap *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->mask = 63;
	m->cap = 32;
	m->slot = calloc(m->mask + 1, sizeof *m->slot);
	m->key = malloc(m->cap * sizeof *m->key);
	if (!m->slot || !m->key) {
		keymap_free(&m);
		return NULL;
	}
	return m;
}

void keymap_free(mdb_keymap **mp)
{
	if (!mp || !*mp)
		return;
	free((*mp)->slot);
	free((*mp)->key);
	free(*mp);
	*mp = NULL;
}

/* The bucket holding (s, iv), or the empty bucket where it would go. */
static uint32_t probe(const mdb_keymap *m, const char *s, int32_t iv)
{
	uint32_t b = (uint32_t)keymap_hash(s, iv) & m->mask;
	for (;; b = (b + 1) & m->mask) {
		int32_t x = m->slot[b];
		if (!x)
			return b;
		const struct key *k = &m->key[x - 1];
		if (k->iv == iv && strcmp(k->s, s) == 0)
			return b;
	}
}

int keymap_find(const mdb_keymap *m, const char *s, int32_t iv)
{
	int32_t x = m->slot[probe(m, s, iv)];
	return x ? x - 1 : -ENOENT;
}

/* Double the buckets (kept under half full) and rehash. */
static int grow(mdb_keymap *m)
{
	uint32_t nb = (m->mask + 1) * 2;
	int32_t *ns = calloc(nb, sizeof *ns);
	if (!ns)
		return -ENOMEM;
	free(m->slot);
	m->slot = ns;
	m->mask = nb - 1;
	for (int i = 0; i < m->n; i++)
		m->slot[probe(m, m->key[i].s, m->key[i].iv)] = i + 1;
	return 0;
}

int keymap_get(mdb_keymap *m, const char *s, int32_t iv, int *added)
{
	if (added)
		*added = 0;
	uint32_t b = probe(m, s, iv);
	if (m->slot[b])
		return m->slot[b] - 1;
	size_t len = strlen(s);
	if (len >= KEY_SYM_MAX)
		return -EINVAL;
	if (m->n == m->cap) {
		struct key *nk = realloc(m->key, 2 * (size_t)m->cap * sizeof *nk);
		if (!nk)
			return -ENOMEM;
		m->key = nk;
		m->cap *= 2;
	}
	if ((uint32_t)(m->n + 1) * 2 > m->mask + 1) {
		if (grow(m) < 0)
			return -ENOMEM;
		b = probe(m, s, iv);
	}
	memcpy(m->key[m->n].s, s, len + 1);
	m->key[m->n].iv = iv;
	m->slot[b] = ++m->n;
	if (added)
		*added = 1;
	return m->n - 1;
}

int keymap_count(const mdb_keymap *m)
{
	return m->n;
}

const char *keymap_symbol(const mdb_keymap *m, int i)
{
	return m->key[i].s;
}

int32_t keymap_interval(const mdb_keymap *m, int i)
{
	return m->key[i].iv;
}
