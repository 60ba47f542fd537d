from metaflow import FlowSpec, IncludeFile, Parameter, step


def script_path(filename):
    """A path relative to this script, so the flow finds its data from any directory."""
    import os

    return os.path.join(os.path.dirname(os.path.abspath(__file__)), filename)


class PlayListFlow(FlowSpec):
    """
    A flow to generate a playlist of movies of one genre, plus a bonus movie of another genre.

    1) Parses the movie data (an IncludeFile).
    2) Picks the bonus movie and the genre's movies in parallel branches.
    3) Scores every genre movie in a foreach.
    4) Joins everything into the playlist.
    """

    movie_data = IncludeFile("movie_data", help="The path to a movie metadata file.",
                             default=script_path("movies.csv"))
    genre = Parameter("genre", help="Filter movies for a particular genre.", default="Sci-Fi")
    recommendations = Parameter("recommendations", help="The number of movies to recommend.", default=3)

    @step
    def start(self):
        """Parse the CSV file into a dict of columns."""
        import csv

        rows = list(csv.DictReader(self.movie_data.splitlines()))
        self.dataframe = {column: [row[column] for row in rows] for column in rows[0]}
        self.dataframe["gross"] = [int(g) for g in self.dataframe["gross"]]
        self.next(self.bonus_movie, self.genre_movies)

    @step
    def bonus_movie(self):
        """Pick the highest grossing movie that is not of the genre."""
        df = self.dataframe
        candidates = [i for i, genres in enumerate(df["genres"]) if self.genre.lower() not in genres.lower()]
        best = max(candidates, key=lambda i: df["gross"][i])
        self.bonus = (df["movie_title"][best], df["genres"][best])
        self.next(self.join)

    @step
    def genre_movies(self):
        """Select the movies of the genre and score each of them."""
        df = self.dataframe
        self.movies = [df["movie_title"][i] for i, genres in enumerate(df["genres"])
                       if self.genre.lower() in genres.lower()]
        print(f"{len(self.movies)} {self.genre} movies")
        self.next(self.score_movie, foreach="movies")

    @step
    def score_movie(self):
        """Score one movie: its gross in millions, with a bonus for recent ones."""
        df = self.dataframe
        self.movie = self.input
        i = df["movie_title"].index(self.movie)
        year = int(df["title_year"][i])
        self.score = round(df["gross"][i] / 1e6 + (10 if year >= 2015 else 0), 2)
        self.next(self.top_movies)

    @step
    def top_movies(self, inputs):
        """Keep the best scoring movies, in score order."""
        self.scored = [(inp.movie, inp.score) for inp in inputs]
        ranked = sorted(self.scored, key=lambda pair: -pair[1])
        self.playlist = [movie for movie, _ in ranked[: self.recommendations]]
        self.merge_artifacts(inputs, include=["dataframe", "movies"])
        self.next(self.join)

    @step
    def join(self, inputs):
        """Join the two branches."""
        self.playlist = inputs.top_movies.playlist
        self.scored = inputs.top_movies.scored
        self.bonus = inputs.bonus_movie.bonus
        self.merge_artifacts(inputs, include=["dataframe"])
        self.next(self.end)

    @step
    def end(self):
        """Print the playlist."""
        print(f"Playlist for movies in genre '{self.genre}'")
        for pick, movie in enumerate(self.playlist, 1):
            print(f"Pick {pick}: '{movie}'")
        print("Bonus Pick: '{}' from '{}'".format(*self.bonus))
        self.num_movies = len(self.dataframe["movie_title"])


if __name__ == "__main__":
    PlayListFlow()
