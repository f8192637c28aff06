// Saved state for the app: values survive a reload (kept in localStorage as JSON).
//   const todos = load('todos', []);  ...  save('todos', todos);
function load(key, fallback) {
  try {
    const saved = localStorage.getItem(key);
    return saved === null ? fallback : JSON.parse(saved);
  } catch {
    return fallback;
  }
}

function save(key, value) {
  localStorage.setItem(key, JSON.stringify(value));
}
