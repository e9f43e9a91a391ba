// The playground page's own script (a file, so the page's CSP needs no
// 'unsafe-inline'): mounts the vendored GraphiQL on #graphiql.
(function () {
  var defaultQuery = [
    '# license-gateway playground',
    '#',
    '# 1. Sign in with this mutation:',
    '#',
    '#   mutation {',
    '#     signIn(username: "...", password: "...") {',
    '#       __typename',
    '#       ... on SignInSuccess { token }',
    '#     }',
    '#   }',
    '#',
    '# 2. Put the token in the Headers tab below:',
    '#',
    '#   {"Authorization": "Bearer <token>"}',
    '#',
    '#    It lives only in this page: it is not stored in the browser, so',
    '#    a reload (or anyone using this browser later) does not have it.',
    '#',
    '# 3. Then run queries, e.g.:',
    '',
    '{ viewer { __typename } }',
    ''
  ].join('\n');

  var fetcher = GraphiQL.createFetcher({ url: '/graphql' });

  // GraphiQL 3.9 writes the headers of every query it runs into its history
  // (graphiql:queries, graphiql:favorites) whatever shouldPersistHeaders
  // says, so the bearer token would land in localStorage anyway. This
  // storage drops every `headers` value before anything is written.
  var SCRUBBED = ['graphiql:queries', 'graphiql:favorites', 'graphiql:tabState'];
  function dropHeaders(value) {
    if (Array.isArray(value)) {
      value.forEach(dropHeaders);
    } else if (value && typeof value === 'object') {
      Object.keys(value).forEach(function (key) {
        if (key === 'headers') {
          value[key] = null;
        } else {
          dropHeaders(value[key]);
        }
      });
    }
    return value;
  }
  var storage = {
    getItem: function (key) {
      return localStorage.getItem(key);
    },
    setItem: function (key, value) {
      if (key === 'graphiql:headers') {
        localStorage.removeItem(key);
        return;
      }
      if (SCRUBBED.indexOf(key) >= 0) {
        try {
          value = JSON.stringify(dropHeaders(JSON.parse(value)));
        } catch (e) {
          localStorage.removeItem(key); // not what GraphiQL writes there: keep nothing unchecked
          return;
        }
      }
      localStorage.setItem(key, value);
    },
    removeItem: function (key) {
      localStorage.removeItem(key);
    },
    get length() {
      return Object.keys(localStorage).filter(function (k) { return k.indexOf('graphiql:') === 0; }).length;
    },
    clear: function () {
      Object.keys(localStorage).forEach(function (k) {
        if (k.indexOf('graphiql:') === 0) localStorage.removeItem(k);
      });
    }
  };
  // What an earlier version of this page stored (it kept the headers) goes.
  storage.setItem('graphiql:headers', null);
  SCRUBBED.forEach(function (key) {
    var stored = localStorage.getItem(key);
    if (stored !== null) storage.setItem(key, stored);
  });

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      isHeadersEditorEnabled: true,
      // Headers hold the bearer token: never written to localStorage.
      shouldPersistHeaders: false,
      storage: storage,
      defaultEditorToolsVisibility: 'headers'
    })
  );
})();
