// What the server writes into sw.js as it serves it (src/http/assets.rs): the URL of every asset.
declare const __PRECACHE__: string[];
