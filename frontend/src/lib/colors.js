// Subtle, colour-blind-friendly hues per source; the generator's three get fixed slots so
// they look the same on every screen, any other name gets a stable hashed one.
const PALETTE = ['#4c7dff', '#a66cff', '#f0a23b', '#1fb79a', '#ec5b86', '#3bb4e5', '#c98a3a', '#7b8a9e'];
const FIXED = { web: 0, mobile: 1, api: 2 };

function hash(text) {
  let h = 2166136261;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

export function sourceColor(source) {
  const i = FIXED[source] ?? 3 + (hash(source) % (PALETTE.length - 3));
  return PALETTE[i];
}
